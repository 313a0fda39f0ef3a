package localcluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// kwokYAML is the shape of kwok.yaml as kwokctl v0.8.0 writes it for the
// binary runtime: the configuration, then the Stages.
const kwokYAML = `apiVersion: config.kwok.x-k8s.io/v1alpha1
components:
- args:
  - --data-dir=/w/clusters/c/etcd
  binary: /w/clusters/c/bin/etcd
  name: etcd
  workDir: /w/clusters/c
- args:
  - --etcd-servers=http://127.0.0.1:32765
  - --secure-port=32764
  binary: /w/clusters/c/bin/kube-apiserver
  envs:
  - name: GODEBUG
    value: http2debug=0
  name: kube-apiserver
  workDir: /w/clusters/c
kind: KwokctlConfiguration
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
`

func TestComponentsFromKwokYAML(t *testing.T) {
	g := NewWithT(t)
	c := &Cluster{Name: "c", WorkDir: t.TempDir()}
	g.Expect(os.MkdirAll(c.clusterDir(), 0o750)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(c.clusterDir(), "kwok.yaml"), []byte(kwokYAML), 0o600)).To(Succeed())

	comp, err := c.component(apiServerComponent)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(comp.Binary).To(Equal("/w/clusters/c/bin/kube-apiserver"))
	g.Expect(comp.Args).To(Equal([]string{"--etcd-servers=http://127.0.0.1:32765", "--secure-port=32764"}))
	g.Expect(comp.WorkDir).To(Equal("/w/clusters/c"))
	g.Expect(comp.Envs).To(HaveLen(1))
	g.Expect(comp.Envs[0].Name + "=" + comp.Envs[0].Value).To(Equal("GODEBUG=http2debug=0"))
	g.Expect(c.pidPath(comp)).To(Equal(filepath.Join(c.WorkDir, "clusters", "c", "pids", "kube-apiserver.pid")))
	g.Expect(c.logPath(comp)).To(Equal(filepath.Join(c.WorkDir, "clusters", "c", "logs", "kube-apiserver.log")))

	_, err = c.component("kube-scheduler")
	g.Expect(err).To(MatchError(ContainSubstring("names no component kube-scheduler")))
}

func TestAliveCountsAZombieAsGone(t *testing.T) {
	g := NewWithT(t)
	g.Expect(alive(os.Getpid())).To(BeTrue())

	cmd := exec.Command("sleep", "0.2")
	g.Expect(cmd.Start()).To(Succeed())
	pid := cmd.Process.Pid
	g.Expect(alive(pid)).To(BeTrue(), "running")
	// Not reaped yet: once it exits it is a zombie, which still answers
	// signal 0, and counts as gone.
	g.Eventually(func() bool { return alive(pid) }).WithTimeout(5 * time.Second).WithPolling(20 * time.Millisecond).Should(BeFalse())
	g.Expect(syscall.Kill(pid, 0)).To(Succeed(), "the zombie is still there")
	g.Expect(cmd.Wait()).To(Succeed())
	g.Expect(alive(pid)).To(BeFalse(), "reaped")
}
