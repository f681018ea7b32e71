package chart

import (
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestChartPushesAsOCIArtifact packages the chart, `helm push`es it to go-containerregistry's registry on
// 127.0.0.1 and reads it back: through the registry API (a Helm chart manifest: the chart config and one
// content layer) and with `helm show chart` from the oci:// reference.
func TestChartPushesAsOCIArtifact(t *testing.T) {
	helm, _ := tools(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	host := l.Addr().String()
	dir := t.TempDir()
	env := []string{"HELM_CACHE_HOME=" + filepath.Join(dir, "cache"), "HELM_CONFIG_HOME=" + filepath.Join(dir, "config"), "HELM_DATA_HOME=" + filepath.Join(dir, "data")}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		t.Setenv(k, v)
	}
	out := run(t, helm, "package", repo("charts", "attest"), "--destination", dir)
	tgz := filepath.Join(dir, "attest-0.1.0.tgz")
	if _, err := os.Stat(tgz); err != nil {
		t.Fatalf("helm package: %v\n%s", err, out)
	}
	out = run(t, helm, "push", tgz, "oci://"+host+"/charts", "--plain-http")
	if !strings.Contains(out, "Digest: sha256:") {
		t.Fatalf("helm push printed no digest:\n%s", out)
	}

	ref, err := name.ParseReference(host+"/charts/attest:0.1.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("read the pushed chart from the registry: %v", err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(m.Config.MediaType); got != "application/vnd.cncf.helm.config.v1+json" {
		t.Errorf("config media type %s", got)
	}
	if len(m.Layers) != 1 || string(m.Layers[0].MediaType) != "application/vnd.cncf.helm.chart.content.v1.tar+gzip" {
		t.Errorf("layers %+v, want one chart content layer", m.Layers)
	}
	tgzBytes, err := os.ReadFile(tgz)
	if err != nil {
		t.Fatal(err)
	}
	if m.Layers[0].Size != int64(len(tgzBytes)) {
		t.Errorf("layer of %d bytes, the package has %d", m.Layers[0].Size, len(tgzBytes))
	}

	show := run(t, helm, "show", "chart", "oci://"+host+"/charts/attest", "--version", "0.1.0", "--plain-http")
	for _, want := range []string{"name: attest", "version: 0.1.0", "appVersion: dev"} {
		if !strings.Contains(show, want) {
			t.Errorf("helm show chart from the registry lacks %q:\n%s", want, show)
		}
	}
}
