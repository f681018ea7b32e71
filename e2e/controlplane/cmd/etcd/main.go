// Command etcd is the etcd server pinned by k8s.io/kubernetes, so the e2e suite needs no system package.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
