// Command genmanifests writes N mixed manifests (Pods, Deployments, StatefulSets, CronJobs; one in five with an
// untrusted image, one in seven privileged) into a directory, one file each, or into one multi-document stream
// (-stream FILE, - for stdout) as `kustomize build` writes them, for `make bench` and the streaming tests.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	n := flag.Int("n", 1000, "number of manifests")
	dir := flag.String("dir", "", "output directory (created), one file per manifest")
	stream := flag.String("stream", "", "output file (- for stdout), every manifest in one multi-document stream")
	flag.Parse()
	var err error
	switch {
	case *dir != "" && *stream == "":
		err = generate(*n, *dir)
	case *stream != "" && *dir == "":
		err = writeStream(*n, *stream)
	default:
		fmt.Fprintln(os.Stderr, "genmanifests: give -dir or -stream")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genmanifests:", err)
		os.Exit(1)
	}
}

func podSpec(i int, indent string) string {
	image := fmt.Sprintf("gcr.io/company/app:%d", i)
	if i%5 == 0 {
		image = fmt.Sprintf("quay.io/evil/app:%d", i)
	}
	spec := fmt.Sprintf(`initContainers:
- name: init
  image: gcr.io/company/init:1
containers:
- name: app
  image: %s
  securityContext:
    privileged: %t
    runAsNonRoot: true
  resources:
    limits: {cpu: 500m, memory: 256Mi}
  ports:
  - containerPort: 8080
- name: sidecar
  image: nginx:1.27
`, image, i%7 == 0)
	lines := strings.Split(strings.TrimRight(spec, "\n"), "\n")
	for j := range lines {
		lines[j] = indent + lines[j]
	}
	return strings.Join(lines, "\n") + "\n"
}

// manifest is the i-th manifest.
func manifest(i int) string {
	head := func(apiVersion, kind string) string {
		return fmt.Sprintf("apiVersion: %s\nkind: %s\nmetadata:\n  name: w%d\n  namespace: shop\n", apiVersion, kind, i)
	}
	var doc string
	switch i % 4 {
	case 0:
		doc = head("v1", "Pod") + "spec:\n" + podSpec(i, "  ")
	case 1, 2:
		kind := map[int]string{1: "Deployment", 2: "StatefulSet"}[i%4]
		doc = head("apps/v1", kind) + fmt.Sprintf("spec:\n  replicas: 2\n  selector:\n    matchLabels: {app: a%d}\n  template:\n    metadata:\n      labels: {app: a%d}\n    spec:\n", i, i) + podSpec(i, "      ")
	default:
		doc = head("batch/v1", "CronJob") + "spec:\n  schedule: '0 * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n" + podSpec(i, "          ")
	}
	return doc
}

func generate(n int, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("m%05d.yaml", i)), []byte(manifest(i)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func writeStream(n int, path string) (err error) {
	out := os.Stdout
	if path != "-" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
		out = f
	}
	w := bufio.NewWriterSize(out, 1<<20)
	for i := range n {
		if i > 0 {
			if _, err := w.WriteString("---\n"); err != nil {
				return err
			}
		}
		if _, err := w.WriteString(manifest(i)); err != nil {
			return err
		}
	}
	return w.Flush()
}
