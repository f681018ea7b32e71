// Command genmanifests writes N mixed manifests (Pods, Deployments, StatefulSets, CronJobs; one in five with an
// untrusted image, one in seven privileged) into a directory, one file each, for `make bench`.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	n := flag.Int("n", 1000, "number of manifests")
	dir := flag.String("dir", "", "output directory (created)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "genmanifests: -dir is required")
		os.Exit(2)
	}
	if err := generate(*n, *dir); err != nil {
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

func generate(n int, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range n {
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
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("m%05d.yaml", i)), []byte(doc), 0o644); err != nil {
			return err
		}
	}
	return nil
}
