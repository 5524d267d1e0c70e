// Command etcd is etcd's own server at the release go.mod pins (3.6), built from the Go
// module proxy so that the tests run against it: make etcd-releases.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
