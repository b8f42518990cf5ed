package node

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Image is a container image built from one Go main package: a static binary at /app in an
// otherwise empty image, entrypoint /app.
type Image struct {
	// Package is the Go package to build, e.g. github.com/regent-k8s/regent/examples/lease-leader.
	Package string
	// Dir is the module directory to build in (go build runs there).
	Dir string
	// Tag is the image's reference, e.g. regent.local/lease-leader:e2e.
	Tag string
}

// BuildImage builds img's binary statically and writes the image as a tarball (docker save
// format, which `ctr images import` reads) to out.
func BuildImage(ctx context.Context, img Image, out string) error {
	bin := out + ".bin"
	defer os.Remove(bin)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, img.Package)
	cmd.Dir = img.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", img.Package, err, msg)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return fileLayer("app", data) })
	if err != nil {
		return err
	}
	image, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg, err := image.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", goarch()
	cfg.Config.Entrypoint = []string{"/app"}
	if image, err = mutate.ConfigFile(image, cfg); err != nil {
		return err
	}
	ref, err := name.NewTag(img.Tag)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return tarball.WriteToFile(out, ref, image)
}

// fileLayer is a tar stream holding one executable file.
func fileLayer(path string, data []byte) (io.ReadCloser, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: path, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return io.NopCloser(&buf), nil
}

var _ v1.Image = empty.Image
