package winrm

import "errors"

// ErrTerminated is what a program's stdin reads and output writes return
// once its command was terminated (Signal terminate, Delete of the shell,
// or the server closing).
var ErrTerminated = errors.New("command terminated")
