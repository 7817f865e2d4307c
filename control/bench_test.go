package control

import (
	"context"
	"fmt"
	"testing"

	"easgate/engine"
)

// manyAPI answers Devices with n records and Status with a full overview.
type manyAPI struct {
	*fakeAPI
	recs []engine.DeviceRecord
}

func (m *manyAPI) Devices(context.Context, engine.DeviceQuery) ([]engine.DeviceRecord, error) {
	return m.recs, nil
}

// BenchmarkSocket measures what attaching costs: a Status call (what the
// console polls) and a whole device list (what its device views load), as
// JSON over the Unix socket.
//
//	go test -run '^$' -bench BenchmarkSocket -benchmem ./control
func BenchmarkSocket(b *testing.B) {
	for _, n := range []int{1_000, 150_000} {
		if testing.Short() && n > 1000 {
			continue
		}
		recs := make([]engine.DeviceRecord, n)
		for i := range recs {
			r := fakeRecord
			r.Mailbox = fmt.Sprintf("user%06d@contoso.com", i)
			r.DeviceID = fmt.Sprintf("Appl%012d", i)
			r.DeviceType, r.DeviceModel, r.DeviceOS = "iPhone", "iPhone15C2", "iOS 18.1 22B83"
			r.UserAgent = "Apple-iPhone15C2/2201.83"
			recs[i] = r
		}
		api := &manyAPI{fakeAPI: newFake(), recs: recs}
		srv, err := Listen(Config{API: api, Socket: b.TempDir() + "/s"})
		if err != nil {
			b.Fatal(err)
		}
		go srv.Serve()
		c, err := Dial(context.Background(), srv.Path())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("devices/n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := c.Devices(context.Background(), engine.DeviceQuery{})
				if err != nil || len(got) != n {
					b.Fatalf("%d devices, %v", len(got), err)
				}
			}
		})
		if n == 1000 {
			b.Run("status", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.Status(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		_ = c.Close()
		_ = srv.Close(context.Background())
	}
}
