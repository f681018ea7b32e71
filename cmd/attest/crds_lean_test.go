//go:build lean

package main

const kubeconfigMissing = "this command needs the full build of attest"
