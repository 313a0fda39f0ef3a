//go:build e2e

package faults

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

var _ = Describe("the fault injector", func() {
	It("answers writes as the apiserver fails them, forwarding only the lost replies, and never touches reads or exempt namespaces", func(ctx SpecContext) {
		// A stand-in apiserver that accepts every request and counts what reaches it.
		var received, receivedWrites atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			received.Add(1)
			if r.Method != http.MethodGet {
				receivedWrites.Add(1)
			}
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings"}}`))
		}))
		DeferCleanup(srv.Close)

		in := newInjector(1, 7, func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/namespaces/steady/") })
		cs, err := kubernetes.NewForConfig(in.wrap(&rest.Config{Host: srv.URL, QPS: 1000, Burst: 1000}))
		Expect(err).NotTo(HaveOccurred())

		const writes = 90
		var conflicts, internals int64
		for range writes {
			_, err := cs.CoreV1().ConfigMaps("clinic").Create(ctx,
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{})
			var status *apierrors.StatusError
			Expect(errors.As(err, &status)).To(BeTrue(), "client-go decodes the injected Status: %v", err)
			switch {
			case apierrors.IsConflict(err):
				conflicts++
				Expect(status.ErrStatus.Details.Kind).To(Equal("configmaps"))
			case apierrors.IsInternalError(err):
				internals++
			default:
				Fail("neither a conflict nor an internal error: " + err.Error())
			}
		}
		counts := in.counts()
		Expect(counts[conflict]).To(Equal(conflicts))
		Expect(counts[internalError] + counts[lostReply]).To(Equal(internals))
		for k := range faultKinds {
			Expect(counts[k]).To(BeNumerically(">", 0), "every kind is drawn: %s", k)
		}
		Expect(receivedWrites.Load()).To(Equal(counts[lostReply]), "only the lost replies were sent")
		Expect(in.writes.Load()).To(BeEquivalentTo(writes))
		Expect(in.requests()).To(Equal(map[string]int64{"POST " + schema.GroupResource{Resource: "configmaps"}.String(): writes}))

		_, err = cs.CoreV1().ConfigMaps("clinic").Get(ctx, "settings", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred(), "reads are never failed")
		_, err = cs.CoreV1().ConfigMaps("steady").Create(ctx,
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings"}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred(), "writes to an exempt namespace are never failed")
		Expect(in.writes.Load()).To(BeEquivalentTo(writes), "exempt writes are not counted")
		Expect(received.Load()).To(Equal(counts[lostReply] + 2))
	})

	It("reads the resource and name a request path names", func() {
		for path, want := range map[string]apiTarget{
			"/api/v1/namespaces/clinic/pods/records-0":                                            {schema.GroupResource{Resource: "pods"}, "records-0"},
			"/apis/networking.k8s.io/v1/namespaces/clinic/networkpolicies":                        {schema.GroupResource{Group: "networking.k8s.io", Resource: "networkpolicies"}, ""},
			"/apis/compliance.phiguard.io/v1alpha1/namespaces/clinic/phiworkloads/records/status": {schema.GroupResource{Group: "compliance.phiguard.io", Resource: "phiworkloads/status"}, "records"},
			"/api/v1/namespaces/clinic":                                                           {schema.GroupResource{Resource: "namespaces"}, "clinic"},
			"/api/v1/namespaces/clinic/finalize":                                                  {schema.GroupResource{Resource: "namespaces/finalize"}, "clinic"},
		} {
			Expect(parsePath(path)).To(Equal(want), path)
		}
	})
})
