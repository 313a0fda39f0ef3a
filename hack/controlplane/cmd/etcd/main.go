// Command etcd is upstream's etcd server main, linked from the
// go.etcd.io/etcd/server/v3 module so the local control plane needs no download.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
