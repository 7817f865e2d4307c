package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	code := exitCode(err)
	if msg := message(err); msg != "" {
		fmt.Fprintln(os.Stderr, "easgate:", msg)
	}
	os.Exit(code)
}
