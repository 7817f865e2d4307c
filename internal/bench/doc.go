// Package bench measures easgate at scale: it runs the simulators (`easgate
// sim --commands`) and each `easgate sync` in processes of their own, and
// measures the sync process alone (wall time, CPU time and peak RSS from
// its rusage, store size and bytes written), with the simulators' counters
// of process starts, WinRM round trips and Graph requests taken before and
// after. It computes the floor (the least time any client needs under the
// simulators' cost model), runs a per-mailbox baseline through the real
// WinRM client, and writes the results as a table. `easgate bench` and
// scripts/bench drive it.
//
// It imports the simulators (for their cost constants and wire types) and
// the WinRM client; never the store, an adapter or the console, and never
// the Graph SDK: it talks to easgate only by running its binary.
package bench
