// Command velero is upstream's Velero CLI and server main, linked from the
// github.com/vmware-tanzu/velero module so the local cluster's backups need no
// download. Its go.mod carries Velero's own replace of kopia.
package main

import (
	"os"
	"path/filepath"

	"k8s.io/klog/v2"

	"github.com/vmware-tanzu/velero/pkg/cmd"
	"github.com/vmware-tanzu/velero/pkg/cmd/velero"
)

func main() {
	defer klog.Flush()
	err := velero.NewCommand(filepath.Base(os.Args[0])).Execute()
	cmd.CheckError(err)
}
