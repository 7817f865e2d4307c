package main

import (
	"bytes"
	"testing"
	"time"
)

func TestWriteCSVOfFollowsTheJSONFields(t *testing.T) {
	type row struct {
		Name  string     `json:"name"`
		When  *time.Time `json:"when"`
		Count int        `json:"count"`
		Tags  []string   `json:"tags,omitempty"`
		skip  string
	}
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	err := writeCSVOf(&b, []row{
		{Name: "=HYPERLINK(\"x\")", When: &at, Count: 2, Tags: []string{"a", "b"}},
		{Name: "plain\x1b[2J", Count: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "name,when,count,tags\n" +
		"\"'=HYPERLINK(\"\"x\"\")\",2026-11-01T12:00:00Z,2,a;b\n" +
		"plain,,0,\n"
	if b.String() != want {
		t.Errorf("CSV =\n%s\nwant\n%s", b.String(), want)
	}
}
