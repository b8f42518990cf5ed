// Package examplerun builds regent's examples and runs them as OS processes, handing each line
// they log to a callback. The end-to-end tests and the demo use it.
package examplerun

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// RepoRoot is the repository's root folder, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Build compiles examples/name into dir and returns the binary's path.
func Build(ctx context.Context, name, dir string) (string, error) {
	return BuildPackage(ctx, RepoRoot(), "./examples/"+name, filepath.Join(dir, name))
}

// BuildPackage compiles the main package pkg of the module in moduleDir into out.
func BuildPackage(ctx context.Context, moduleDir, pkg, out string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = moduleDir
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// Line is one line a process logged; zap's JSON fields are decoded when the line is JSON.
type Line struct {
	Text   string
	Msg    string
	Fields map[string]any
	Time   time.Time
}

// Process is a running example.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	wg   sync.WaitGroup
}

// Start runs bin with args and the environment env added to this process's; each line of its
// output is passed to onLine, from one goroutine per stream.
func Start(name, bin string, args, env []string, onLine func(*Process, Line)) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	for _, r := range []io.Reader{stdout, stderr} {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			s := bufio.NewScanner(r)
			s.Buffer(make([]byte, 64*1024), 1024*1024)
			for s.Scan() {
				onLine(p, parse(s.Text()))
			}
		}()
	}
	go func() {
		p.wg.Wait() // all output read before Wait closes the pipes
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func parse(text string) Line {
	l := Line{Text: text, Time: time.Now()}
	var fields map[string]any
	if json.Unmarshal([]byte(text), &fields) == nil {
		l.Fields = fields
		l.Msg, _ = fields["msg"].(string)
	}
	return l
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig.
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Done is closed when the process has exited and its output has been read.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process exited, once Done is closed.
func (p *Process) Err() error { return p.err }

// Stop sends SIGTERM and waits up to grace for the process to exit, then kills it. It returns
// how the process exited.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.Signal(syscall.SIGKILL)
		<-p.done
	}
	return p.err
}
