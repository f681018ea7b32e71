// Package harness runs a real control plane on 127.0.0.1 for ATTEST's e2e suite and `make run`: etcd and
// kube-apiserver through controller-runtime's envtest (pointed at binaries built from the k8s.io/kubernetes
// module), kube-controller-manager, and the built `attest serve` binary registered from the manifests' own webhook
// configurations with the Service swapped for a URL. Everything it starts it stops by PID.
package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/continuums/attest/webhook/webhooktest"
)

// Namespace is ATTEST's own namespace, which the webhooks never cover.
const Namespace = "attest-system"

// LocalWebhookConfiguration names the URL-registered copies of the manifests' webhook configurations, so that
// applying manifests/base itself (which registers by Service) never collides with them.
const LocalWebhookConfiguration = "attest-local"

// CertSecret is the manifests' Secret in which ATTEST keeps its CA and serving certificate.
const CertSecret = "attest-tls"

// WebhookHost is the name the API server calls the local ATTEST by; its managed certificate is issued for it.
const WebhookHost = "localhost"

// ServiceAccountUser is the identity ATTEST runs as, so the manifests' RBAC is what it gets.
const ServiceAccountUser = "system:serviceaccount:" + Namespace + ":attest"

// Options say what to run.
type Options struct {
	// Assets holds kube-apiserver, etcd, kube-controller-manager and kubectl.
	Assets string
	// Attest is the built attest binary.
	Attest string
	// Repo is the checkout: manifests/ and the config are read from it.
	Repo string
	// Config is the policies.yaml to start with; it is copied, and Cluster.ConfigPath is the live copy.
	Config string
	// Dir holds kubeconfigs, certificates, logs and etcd data; it must exist.
	Dir string
	// ControllerManager starts kube-controller-manager, so Deployments get ReplicaSets and Pods.
	ControllerManager bool
	// Log receives progress lines.
	Log io.Writer
}

// Cluster is a running control plane with ATTEST registered.
type Cluster struct {
	o          Options
	env        *envtest.Environment
	Client     kubernetes.Interface
	Kubeconfig string // admin (system:masters)
	ConfigPath string // the live policies.yaml ATTEST serves
	CertDir    string
	AttestPort int // the webhook's TLS port; it serves the admission paths only
	// MetricsPort serves /metrics and ProbePort /healthz and /readyz, plain HTTP on 127.0.0.1 as in a Pod.
	MetricsPort int
	ProbePort   int
	caPEM       []byte
	attest      *Process
	kcm         *Process
	kubectl     string // set by Connect
	faults      faultState
}

// Start brings everything up; on error it tears down what it started.
func Start(ctx context.Context, o Options) (c *Cluster, err error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	for _, bin := range []string{"kube-apiserver", "etcd", "kubectl", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(o.Assets, bin)); err != nil {
			return nil, fmt.Errorf("control plane binary %s missing in %s (run `make controlplane`): %w", bin, o.Assets, err)
		}
	}
	c = &Cluster{o: o}
	defer func() {
		if err != nil {
			c.Stop()
			c = nil
		}
	}()
	t0 := time.Now()
	c.env = &envtest.Environment{
		BinaryAssetsDirectory:    o.Assets,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	c.env.ControlPlane.Etcd = nil // envtest defaults it; data goes to its own temp dir
	api := c.env.ControlPlane.GetAPIServer()
	if api.Out, err = os.Create(filepath.Join(o.Dir, "kube-apiserver.log")); err != nil {
		return c, err
	}
	api.Err = api.Out
	api.Configure().
		Append("endpoint-reconciler-type", "none").
		Append("service-cluster-ip-range", "10.0.0.0/24")
	cfg, err := c.env.Start()
	if err != nil {
		return c, fmt.Errorf("start etcd and kube-apiserver: %w", err)
	}
	fmt.Fprintf(o.Log, "control plane ready in %s at %s\n", time.Since(t0).Round(time.Millisecond), cfg.Host)
	if c.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return c, err
	}
	if c.Kubeconfig, err = c.writeKubeconfig("admin", envtest.User{Name: "attest-e2e-admin", Groups: []string{"system:masters"}}); err != nil {
		return c, err
	}
	if err := c.applyManifests(ctx); err != nil {
		return c, err
	}
	if o.ControllerManager {
		if err := c.startControllerManager(ctx); err != nil {
			return c, err
		}
	}
	for _, port := range []*int{&c.AttestPort, &c.MetricsPort, &c.ProbePort} {
		if *port, err = webhooktest.FreePort(); err != nil {
			return c, err
		}
	}
	if err := c.registerWebhooks(ctx); err != nil {
		return c, err
	}
	if err := c.startAttest(ctx); err != nil {
		return c, err
	}
	fmt.Fprintf(o.Log, "ATTEST registered in %s\n", time.Since(t0).Round(time.Millisecond))
	return c, nil
}

// Stop tears down ATTEST, the controller manager and the control plane; it is safe to call twice.
func (c *Cluster) Stop() {
	if c == nil {
		return
	}
	c.stopReplicas()
	c.attest.Stop()
	c.kcm.Stop()
	c.faults.api.Stop() // a kube-apiserver the harness restarted; envtest stops the one it started
	if c.env != nil {
		if err := c.env.Stop(); err != nil {
			fmt.Fprintf(c.o.Log, "stop control plane: %v\n", err)
		}
		c.env = nil
	}
}

// Connect uses an existing cluster (kind, with ATTEST deployed from manifests/) through kubeconfig and the kubectl
// on PATH; nothing is started or stopped, and Local reports false.
func Connect(kubeconfig string) (*Cluster, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		return nil, err
	}
	return &Cluster{Client: client, Kubeconfig: kubeconfig, kubectl: kubectl}, nil
}

// Local reports whether this harness started the cluster (and so can stop ATTEST, edit its config, read its log).
func (c *Cluster) Local() bool { return c.env != nil }

// Kubectl runs kubectl as the admin and returns stdout and stderr.
func (c *Cluster) Kubectl(ctx context.Context, stdin string, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, c.KubectlPath(), append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// KubectlPath is the kubectl the harness uses: the one built with the control plane, or the one on PATH.
func (c *Cluster) KubectlPath() string {
	if c.kubectl != "" {
		return c.kubectl
	}
	return filepath.Join(c.o.Assets, "kubectl")
}

// StopAttest stops the webhook (to show what the API server does without it).
func (c *Cluster) StopAttest() { c.attest.Stop() }

// StartAttest starts the webhook again on the same port; it finds its certificate in the Secret.
func (c *Cluster) StartAttest(ctx context.Context) error {
	c.attest.Stop()
	return c.runAttest(ctx)
}

// StartAttestWith starts the webhook again on the same port with more `attest serve` flags (StartAttest
// restores the usual ones).
func (c *Cluster) StartAttestWith(ctx context.Context, args ...string) error {
	c.attest.Stop()
	return c.runAttest(ctx, args...)
}

// AttestLog is the webhook's log so far.
func (c *Cluster) AttestLog() string { return c.attest.Output() }

func (c *Cluster) writeKubeconfig(name string, u envtest.User) (string, error) {
	user, err := c.env.AddUser(u, nil)
	if err != nil {
		return "", fmt.Errorf("add user %s: %w", u.Name, err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.o.Dir, name+".kubeconfig")
	return path, os.WriteFile(path, kc, 0o600)
}

// applyManifests applies manifests/base as a user would, except the webhook configurations: their Service has no
// endpoints here, so they are registered by URL instead (registerWebhooks).
func (c *Cluster) applyManifests(ctx context.Context) error {
	built, stderr, err := c.Kubectl(ctx, "", "kustomize", filepath.Join(c.o.Repo, "manifests", "base"))
	if err != nil {
		return fmt.Errorf("kubectl kustomize manifests/base: %v: %s", err, stderr)
	}
	var keep []string
	for _, doc := range strings.Split(built, "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return fmt.Errorf("read built manifests: %w", err)
		}
		if meta.Kind == "ValidatingWebhookConfiguration" || meta.Kind == "MutatingWebhookConfiguration" {
			continue
		}
		keep = append(keep, doc)
	}
	keep = append(keep, localWebhookRBAC)
	if _, stderr, err := c.Kubectl(ctx, strings.Join(keep, "\n---\n"), "apply", "-f", "-"); err != nil {
		return fmt.Errorf("apply manifests/base: %v: %s", err, stderr)
	}
	return nil
}

// localWebhookRBAC lets ATTEST inject its CA into the URL-registered configurations, as the manifests' ClusterRole
// lets it for the ones named attest.
const localWebhookRBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: attest-local-webhooks
rules:
  - apiGroups: [admissionregistration.k8s.io]
    resources: [validatingwebhookconfigurations, mutatingwebhookconfigurations]
    resourceNames: [` + LocalWebhookConfiguration + `]
    verbs: [update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: attest-local-webhooks
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: attest-local-webhooks
subjects:
  - kind: ServiceAccount
    name: attest
    namespace: ` + Namespace + "\n"

func (c *Cluster) startControllerManager(ctx context.Context) error {
	kubeconfig, err := c.writeKubeconfig("kube-controller-manager", envtest.User{Name: "system:kube-controller-manager"})
	if err != nil {
		return err
	}
	api := c.env.ControlPlane.APIServer
	caFile := filepath.Join(c.o.Dir, "apiserver-ca.crt")
	if err := os.WriteFile(caFile, api.SecureServing.CA, 0o600); err != nil {
		return err
	}
	port, err := webhooktest.FreePort()
	if err != nil {
		return err
	}
	pluginDir := filepath.Join(c.o.Dir, "kcm-volume-plugins")
	if err := os.MkdirAll(pluginDir, 0o700); err != nil {
		return err
	}
	c.kcm, err = StartProcess(ctx, "kube-controller-manager", filepath.Join(c.o.Assets, "kube-controller-manager"), filepath.Join(c.o.Dir, "kcm.log"),
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--service-account-private-key-file="+filepath.Join(api.CertDir, "sa-signer.key"),
		"--root-ca-file="+caFile,
		"--controllers=*",
		"--use-service-account-credentials=true",
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--cert-dir="+filepath.Join(c.o.Dir, "kcm-certs"),
		"--leader-elect=false",
		"--flex-volume-plugin-dir="+pluginDir,
		"--concurrent-deployment-syncs=2",
	)
	return err
}

func (c *Cluster) startAttest(ctx context.Context) error {
	if _, err := c.writeKubeconfig("attest", envtest.User{Name: ServiceAccountUser, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + Namespace}}); err != nil {
		return err
	}
	config, err := os.ReadFile(c.o.Config)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	c.ConfigPath = filepath.Join(c.o.Dir, "policies.yaml")
	if err := os.WriteFile(c.ConfigPath, config, 0o600); err != nil {
		return err
	}
	c.CertDir = filepath.Join(c.o.Dir, "attest-certs")
	return c.runAttest(ctx)
}

// runAttest starts `attest serve` as the manifests run it: it issues its own certificate into the manifests'
// attest-tls Secret and injects the CA into the URL-registered webhook configurations, which the harness waits for.
func (c *Cluster) runAttest(ctx context.Context, extra ...string) error {
	var err error
	args := []string{"serve", "--host=127.0.0.1", "--port=" + strconv.Itoa(c.AttestPort), "--cert-dir=" + c.CertDir,
		"--metrics-bind-address=" + loopback(c.MetricsPort), "--health-probe-bind-address=" + loopback(c.ProbePort),
		"--cert-secret=" + Namespace + "/" + CertSecret, "--cert-hosts=" + WebhookHost,
		"--webhook-configuration=" + LocalWebhookConfiguration,
		"--config=" + c.ConfigPath, "--kubeconfig=" + filepath.Join(c.o.Dir, "attest.kubeconfig")}
	c.attest, err = StartProcess(ctx, "attest", c.o.Attest, filepath.Join(c.o.Dir, "attest.log"), append(args, extra...)...)
	if err != nil {
		return err
	}
	if c.caPEM, err = c.WaitForCABundle(ctx, nil); err != nil {
		return err
	}
	return c.waitReady(ctx)
}

// CABundles are the caBundle of the local validating and mutating webhook configurations.
func (c *Cluster) CABundles(ctx context.Context) (validating, mutating []byte, err error) {
	vwc, err := c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, LocalWebhookConfiguration, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	mwc, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, LocalWebhookConfiguration, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	return vwc.Webhooks[0].ClientConfig.CABundle, mwc.Webhooks[0].ClientConfig.CABundle, nil
}

// WaitForCABundle waits until ATTEST has injected one CA, other than old, into both webhook configurations and
// returns it.
func (c *Cluster) WaitForCABundle(ctx context.Context, old []byte) ([]byte, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, m, err := c.CABundles(ctx)
		if err == nil && len(v) > 0 && bytes.Equal(v, m) && !bytes.Equal(v, old) {
			return v, nil
		}
		if c.attest.Exited() {
			return nil, fmt.Errorf("attest exited: %s", c.attest.Output())
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("caBundle not injected into %s after 60s (last error: %v)\n%s", LocalWebhookConfiguration, err, c.attest.Output())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ServingCertificate is the leaf certificate ATTEST serves now, verified against its injected CA for WebhookHost.
func (c *Cluster) ServingCertificate(ca []byte) (*x509.Certificate, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in the CA bundle")
	}
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", c.AttestPort), &tls.Config{RootCAs: pool, ServerName: WebhookHost, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// UserKubeconfig writes a kubeconfig authenticating as user with groups (local harness only), for driving the
// attest CLI as that person would.
func (c *Cluster) UserKubeconfig(user string, groups ...string) (string, error) {
	return c.writeKubeconfig("user-"+strings.NewReplacer("@", "-", ":", "-").Replace(user), envtest.User{Name: user, Groups: groups})
}

// AttestBinary is the attest binary under test.
func (c *Cluster) AttestBinary() string { return c.o.Attest }

// AttestPID is the running webhook's process ID (a rotation must not change it).
func (c *Cluster) AttestPID() int { return c.attest.PID() }

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// MetricsURL is ATTEST's /metrics (local harness only).
func (c *Cluster) MetricsURL() string { return "http://" + loopback(c.MetricsPort) + "/metrics" }

// ReadyzURL is ATTEST's readiness probe (local harness only).
func (c *Cluster) ReadyzURL() string { return "http://" + loopback(c.ProbePort) + "/readyz" }

// waitReady polls /readyz on the probe port, as the kubelet does, until it answers 200; it is ready once the
// webhook's TLS port accepts connections too.
func (c *Cluster) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	url := c.ReadyzURL()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /readyz: %s", resp.Status)
		}
		if c.attest.Exited() {
			return fmt.Errorf("attest exited: %s", c.attest.Output())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("attest not ready after 30s: %w\n%s", err, c.attest.Output())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// registerWebhooks creates the manifests' webhook configurations with each Service reference replaced by the
// URL of the local ATTEST and no caBundle: ATTEST injects its own CA, as it does in a cluster.
func (c *Cluster) registerWebhooks(ctx context.Context) error {
	raw, err := os.ReadFile(filepath.Join(c.o.Repo, "manifests", "base", "webhooks.yaml"))
	if err != nil {
		return err
	}
	base := fmt.Sprintf("https://%s:%d", WebhookHost, c.AttestPort)
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return fmt.Errorf("webhooks.yaml: %w", err)
		}
		switch meta.Kind {
		case "ValidatingWebhookConfiguration":
			var vwc admissionregistrationv1.ValidatingWebhookConfiguration
			if err := yaml.UnmarshalStrict([]byte(doc), &vwc); err != nil {
				return fmt.Errorf("webhooks.yaml: %w", err)
			}
			vwc.Name = LocalWebhookConfiguration
			for i := range vwc.Webhooks {
				toURL(&vwc.Webhooks[i].ClientConfig, base)
			}
			if _, err := c.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, &vwc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("register validating webhook: %w", err)
			}
		case "MutatingWebhookConfiguration":
			var mwc admissionregistrationv1.MutatingWebhookConfiguration
			if err := yaml.UnmarshalStrict([]byte(doc), &mwc); err != nil {
				return fmt.Errorf("webhooks.yaml: %w", err)
			}
			mwc.Name = LocalWebhookConfiguration
			for i := range mwc.Webhooks {
				toURL(&mwc.Webhooks[i].ClientConfig, base)
			}
			if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, &mwc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("register mutating webhook: %w", err)
			}
		default:
			return fmt.Errorf("webhooks.yaml holds a %q; expected webhook configurations only", meta.Kind)
		}
	}
	return nil
}

func toURL(cc *admissionregistrationv1.WebhookClientConfig, base string) {
	path := "/"
	if cc.Service != nil && cc.Service.Path != nil {
		path = *cc.Service.Path
	}
	url := base + path
	cc.URL, cc.Service, cc.CABundle = &url, nil, nil
}

// WaitForWebhook polls until a server dry-run of obj in namespace is refused by ATTEST, which shows the
// webhook is registered and effective.
func (c *Cluster) WaitForWebhook(ctx context.Context, manifest string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, stderr, err := c.Kubectl(ctx, manifest, "apply", "--dry-run=server", "-f", "-")
		if err != nil && strings.Contains(stderr, `admission webhook "attest.continuu.ms" denied the request`) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("webhook not effective after 30s (last: %v %s)", err, stderr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
