package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"easgate/engine"
	"easgate/engine/sim"
	"easgate/engine/sim/org"
)

// BenchmarkSync times full and quick syncs against in-process simulators
// (no cost model: the remote side answers as fast as it can), after a first
// full sync has brought Exchange in line. Before each timed sync, 1% of the
// organisation churns: new partnerships and compliance changes.
//
//	go test -run '^$' -bench BenchmarkSync -benchtime 5x ./cmd/easgate
func BenchmarkSync(b *testing.B) {
	for _, users := range []int{200, 10_000} {
		for _, kind := range []engine.RunKind{engine.RunFull, engine.RunQuick} {
			b.Run(fmt.Sprintf("%s/users=%d", kind, users), func(b *testing.B) {
				if testing.Short() && users > 1000 {
					b.Skip("large organisation")
				}
				s := startSim(b, users, 1)
				a := openSim(b, s)
				ctx := context.Background()
				if _, err := a.engine.Sync(ctx, engine.SyncRequest{Kind: engine.RunFull, Approve: true}); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					churn(b, s, max(users/100, 1), i)
					b.StartTimer()
					rep, err := a.engine.Sync(ctx, engine.SyncRequest{Kind: kind, Approve: true})
					if err != nil || rep.Run.Status != engine.StatusSucceeded {
						b.Fatalf("sync: %v %+v", err, rep)
					}
					b.ReportMetric(float64(rep.Run.Counts.ChangesApplied), "changes/op")
				}
			})
		}
	}
}

// churn adds n new partnerships and makes n managed devices noncompliant.
func churn(b *testing.B, s *sim.Sim, n, round int) {
	now := time.Now().UTC()
	s.Org.Mu.Lock()
	defer s.Org.Mu.Unlock()
	for i := range n {
		u := s.Org.Users[(round*n+i)%len(s.Org.Users)]
		p := &org.Partnership{DeviceID: fmt.Sprintf("ApplCHURN%03d%04d", round%1000, i), DeviceType: "iPhone",
			DeviceModel: "iPhone17C3", DeviceOS: "iOS 18.3.2 22D82", FirstSync: now, LastSync: now, WhenChanged: now}
		if err := s.Org.AddPartnership(u.UPN, p); err != nil {
			b.Fatal(err)
		}
		md := s.Org.Managed[(round*n+i)%len(s.Org.Managed)]
		if err := s.Org.SetCompliance(md.ID, "noncompliant", now); err != nil {
			b.Fatal(err)
		}
	}
}
