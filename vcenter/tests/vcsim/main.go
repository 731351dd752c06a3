// Command vcsim-launcher runs govmomi's vCenter simulator (vcsim) for
// firmflow-vcenter's integration tests.
//
// Debian ships the govmomi library (golang-github-vmware-govmomi-dev) but no
// vcsim command, so this small program builds one offline in GOPATH mode.
// It creates a VPX model (datacenter, clusters, hosts, VMs), gives every host
// a Dell-style service tag and an FQDN-like name, listens on 127.0.0.1 with an
// ephemeral port (TLS with the simulator's self-signed localhost certificate,
// whose PEM is written to a file), and prints one JSON line on stdout:
//
//	{"url":"https://127.0.0.1:PORT/sdk","username":"...","password":"...",
//	 "control":"http://127.0.0.1:PORT2","ca_file":"/tmp/...","clusters":[...]}
//
// The control endpoint (plain HTTP, 127.0.0.1 only) exposes the simulator's
// fault knobs and its own view of the inventory, so tests can assert on the
// simulator's state rather than on the client under test:
//
//	GET  /state                                  hosts, clusters, low-water marks
//	POST /method-delay?method=M&ms=N             delay serving SOAP method M (vcsim DelayConfig)
//	POST /task-delay?ms=N                        maintenance-mode tasks run for N ms
//	POST /disable?host=MOID&method=M             MethodDisabled for M on a host
//	POST /enable?host=MOID&method=M              undo /disable
//	POST /host?moid=MOID&connection=&status=&maintenance=&power=
//	POST /cluster?moid=MOID&drs=&drs_behavior=&ha=&status=
//	POST /drop-sessions                          forget every SOAP session (NotAuthenticated next)
//	POST /sdk-status?code=N                      answer the next SOAP request with HTTP N
//	POST /reset-watermark                        restart the online low-water marks from now
//
// The process exits when stdin closes, so a test that dies cannot leak it.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// stateMu serialises every change of a host's serving state made by this
// program, and the low-water mark bookkeeping that follows it, so the marks
// are exact rather than sampled.
var stateMu sync.Mutex

// taskDelay is how long maintenance-mode tasks stay running (ms).
var taskDelay int64

// lowWater is, per cluster moid, the fewest hosts online seen since start
// (or the last /reset-watermark). Guarded by stateMu.
var lowWater = map[string]int{}

// mmLog records every maintenance-mode transition in order. Guarded by stateMu.
var mmLog []transition

type transition struct {
	Host        string `json:"host"`
	Cluster     string `json:"cluster"`
	Maintenance bool   `json:"maintenance"`
	Online      int    `json:"online_after"`
}

// slowHost wraps the simulator's HostSystem so maintenance-mode tasks can take
// time (real evacuations do) and honour the method's `timeout` argument the
// way vCenter does (the task fails with Timedout).
//
// The HostSystem is embedded by value: the property collector digs the mo
// type out of the first field and cannot follow a pointer. The price: simulator
// code that asserts `*simulator.HostSystem` (VM creation, migration,
// performance queries) does not work on these hosts; firmflow needs none.
type slowHost struct {
	simulator.HostSystem
}

func online(h *mo.HostSystem) bool {
	return h.Runtime.ConnectionState == types.HostSystemConnectionStateConnected &&
		h.Runtime.PowerState == types.HostSystemPowerStatePoweredOn &&
		!h.Runtime.InMaintenanceMode
}

func hostMO(ref types.ManagedObjectReference) *mo.HostSystem {
	switch h := simulator.Map.Get(ref).(type) {
	case *slowHost:
		return &h.HostSystem.HostSystem
	case *simulator.HostSystem:
		return &h.HostSystem
	}
	return nil
}

// clusterOnline counts the online hosts of the host's cluster. Caller holds stateMu.
func clusterOnline(h *mo.HostSystem) (string, int) {
	if h.Parent == nil || h.Parent.Type != "ClusterComputeResource" {
		return "", 0
	}
	c, ok := simulator.Map.Get(*h.Parent).(*simulator.ClusterComputeResource)
	if !ok {
		return "", 0
	}
	n := 0
	for _, ref := range c.Host {
		if m := hostMO(ref); m != nil && online(m) {
			n++
		}
	}
	return c.Self.Value, n
}

// noteChange updates the low-water mark after a state change. Caller holds stateMu.
func noteChange(h *mo.HostSystem, mmChanged bool) {
	cluster, n := clusterOnline(h)
	if cluster == "" {
		return
	}
	if lw, ok := lowWater[cluster]; !ok || n < lw {
		lowWater[cluster] = n
	}
	if mmChanged {
		mmLog = append(mmLog, transition{h.Self.Value, cluster, h.Runtime.InMaintenanceMode, n})
	}
}

func (h *slowHost) setMaintenance(v bool, locked bool) {
	apply := func() {
		stateMu.Lock()
		defer stateMu.Unlock()
		changed := h.Runtime.InMaintenanceMode != v
		h.Runtime.InMaintenanceMode = v
		noteChange(&h.HostSystem.HostSystem, changed)
	}
	if locked {
		apply()
	} else {
		simulator.Map.WithLock(h, apply)
	}
}

func (h *slowHost) mmTask(name string, target bool, timeoutSecs int32) types.ManagedObjectReference {
	delay := time.Duration(atomicLoad(&taskDelay)) * time.Millisecond
	if delay == 0 {
		// Same as the stock simulator: done before the call returns. We are
		// inside the simulator's lock for h here.
		task := simulator.CreateTask(h, name, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
			if h.Runtime.InMaintenanceMode == target {
				return nil, &types.InvalidState{}
			}
			h.setMaintenance(target, true)
			return nil, nil
		})
		return task.Run()
	}
	// A real evacuation: the task is running when the call returns, and
	// finishes (or times out) later.
	task := simulator.CreateTask(h, name, nil)
	simulator.Map.Update(task, []types.PropertyChange{
		{Name: "info.state", Val: types.TaskInfoStateRunning},
		{Name: "info.startTime", Val: time.Now()},
		{Name: "info.progress", Val: int32(0)},
	})
	go func() {
		wait := delay
		var fault types.BaseMethodFault
		if timeoutSecs > 0 && time.Duration(timeoutSecs)*time.Second < delay {
			wait = time.Duration(timeoutSecs) * time.Second
			fault = &types.Timedout{}
		}
		time.Sleep(wait / 2)
		simulator.Map.WithLock(task, func() {
			simulator.Map.Update(task, []types.PropertyChange{{Name: "info.progress", Val: int32(50)}})
		})
		time.Sleep(wait - wait/2)
		if fault == nil {
			simulator.Map.WithLock(h, func() {
				if h.Runtime.InMaintenanceMode == target {
					fault = &types.InvalidState{}
					return
				}
				h.setMaintenance(target, true)
			})
		}
		state := types.TaskInfoStateSuccess
		var errVal interface{}
		if fault != nil {
			state = types.TaskInfoStateError
			errVal = types.LocalizedMethodFault{Fault: fault, LocalizedMessage: fmt.Sprintf("%T", fault)}
		}
		simulator.Map.WithLock(task, func() {
			simulator.Map.Update(task, []types.PropertyChange{
				{Name: "info.completeTime", Val: time.Now()},
				{Name: "info.progress", Val: int32(100)},
				{Name: "info.state", Val: state},
				{Name: "info.error", Val: errVal},
			})
		})
	}()
	return task.Self
}

func (h *slowHost) EnterMaintenanceModeTask(spec *types.EnterMaintenanceMode_Task) soap.HasFault {
	return &methods.EnterMaintenanceMode_TaskBody{
		Res: &types.EnterMaintenanceMode_TaskResponse{
			Returnval: h.mmTask("enterMaintenanceMode", true, spec.Timeout),
		},
	}
}

func (h *slowHost) ExitMaintenanceModeTask(spec *types.ExitMaintenanceMode_Task) soap.HasFault {
	return &methods.ExitMaintenanceMode_TaskBody{
		Res: &types.ExitMaintenanceMode_TaskResponse{
			Returnval: h.mmTask("exitMaintenanceMode", false, spec.Timeout),
		},
	}
}

var atomicMu sync.Mutex

func atomicLoad(p *int64) int64 {
	atomicMu.Lock()
	defer atomicMu.Unlock()
	return *p
}

func atomicStore(p *int64, v int64) {
	atomicMu.Lock()
	defer atomicMu.Unlock()
	*p = v
}

type hostOut struct {
	Moid          string `json:"moid"`
	Name          string `json:"name"`
	Cluster       string `json:"cluster"`
	ServiceTag    string `json:"service_tag"`
	Connection    string `json:"connection"`
	InMaintenance bool   `json:"in_maintenance"`
	Power         string `json:"power"`
	OverallStatus string `json:"overall_status"`
	Online        bool   `json:"online"`
}

type clusterOut struct {
	Moid  string    `json:"moid"`
	Name  string    `json:"name"`
	Hosts []hostOut `json:"hosts"`
}

func describeHost(ref types.ManagedObjectReference) hostOut {
	h := hostMO(ref)
	if h == nil {
		return hostOut{Moid: ref.Value}
	}
	out := hostOut{
		Moid:          h.Self.Value,
		Name:          h.Name,
		Connection:    string(h.Runtime.ConnectionState),
		InMaintenance: h.Runtime.InMaintenanceMode,
		Power:         string(h.Runtime.PowerState),
		OverallStatus: string(h.Summary.OverallStatus),
		Online:        online(h),
	}
	if h.Parent != nil && h.Parent.Type == "ClusterComputeResource" {
		out.Cluster = h.Parent.Value
	}
	if h.Hardware != nil {
		out.ServiceTag = h.Hardware.SystemInfo.SerialNumber
	}
	return out
}

func clusters() []clusterOut {
	var out []clusterOut
	for _, e := range simulator.Map.All("ClusterComputeResource") {
		c := e.(*simulator.ClusterComputeResource)
		co := clusterOut{Moid: c.Self.Value, Name: c.Name}
		for _, ref := range c.Host {
			co.Hosts = append(co.Hosts, describeHost(ref))
		}
		out = append(out, co)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// serviceTagInfo is what a Dell PowerEdge reports in hardware.systemInfo.otherIdentifyingInfo.
func serviceTagInfo(tag string) []types.HostSystemIdentificationInfo {
	id := func(key, label, value string) types.HostSystemIdentificationInfo {
		return types.HostSystemIdentificationInfo{
			IdentifierValue: value,
			IdentifierType: &types.ElementDescription{
				Description: types.Description{Label: label, Summary: label},
				Key:         key,
			},
		}
	}
	return []types.HostSystemIdentificationInfo{
		id("AssetTag", "Asset Tag", "Not Specified"),
		id("ServiceTag", "Service tag", tag),
		id("EnclosureSerialNumberTag", "Enclosure serial number tag", tag),
		id("SerialNumberTag", "Serial number tag", tag),
	}
}

func main() {
	dc := flag.Int("dc", 1, "datacenters")
	nCluster := flag.Int("cluster", 2, "clusters per datacenter")
	nHost := flag.Int("host", 4, "hosts per cluster")
	standalone := flag.Int("standalone-host", 0, "standalone hosts per datacenter")
	vm := flag.Int("vm", 2, "VMs per resource pool")
	user := flag.String("username", "administrator@vsphere.local", "login user")
	pass := flag.String("password", "vcsim-Passw0rd!", "login password")
	domain := flag.String("domain", "vcsim.test", "DNS domain for host names")
	tagPrefix := flag.String("tag-prefix", "VCS", "service tag prefix (tags are 7 characters)")
	flag.Parse()

	model := simulator.VPX()
	model.Datacenter = *dc
	model.Cluster = *nCluster
	model.ClusterHost = *nHost
	model.Host = *standalone
	model.Machine = *vm
	if err := model.Create(); err != nil {
		log.Fatalf("create model: %v", err)
	}
	defer model.Remove()

	// Dell-like identity and FQDN-style names, and wrap every host.
	var hosts []*simulator.HostSystem
	for _, e := range simulator.Map.All("HostSystem") {
		hosts = append(hosts, e.(*simulator.HostSystem))
	}
	// Deterministic tags: the registry's order is a map's.
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
	for i, h := range hosts {
		n := i + 1
		tag := fmt.Sprintf("%s%0*d", *tagPrefix, 7-len(*tagPrefix), n)
		hw := *h.Hardware
		hw.SystemInfo.Vendor = "Dell Inc."
		hw.SystemInfo.Model = "PowerEdge R650"
		hw.SystemInfo.SerialNumber = tag
		hw.SystemInfo.OtherIdentifyingInfo = serviceTagInfo(tag)
		h.Hardware = &hw
		name := strings.ToLower(strings.ReplaceAll(h.Name, "_", "-")) + "." + *domain
		h.Name = name
		h.Summary.Config.Name = name
		h.Summary.OverallStatus = types.ManagedEntityStatusGreen
		h.OverallStatus = types.ManagedEntityStatusGreen
		simulator.Map.Put(&slowHost{*h})
	}
	for _, e := range simulator.Map.All("ClusterComputeResource") {
		c := e.(*simulator.ClusterComputeResource)
		cfg := c.ConfigurationEx.(*types.ClusterConfigInfoEx)
		cfg.DrsConfig.Enabled = types.NewBool(true)
		cfg.DrsConfig.DefaultVmBehavior = types.DrsBehaviorFullyAutomated
		cfg.DasConfig.Enabled = types.NewBool(true)
		c.OverallStatus = types.ManagedEntityStatusGreen
	}
	stateMu.Lock()
	for _, c := range clusters() {
		n := 0
		for _, h := range c.Hosts {
			if h.Online {
				n++
			}
		}
		lowWater[c.Moid] = n
	}
	stateMu.Unlock()

	leaf, caPEM, err := makeCerts()
	if err != nil {
		log.Fatalf("certificates: %v", err)
	}
	caFile, err := ioutil.TempFile("", "vcsim-ca-*.pem")
	if err != nil {
		log.Fatalf("CA file: %v", err)
	}
	defer os.Remove(caFile.Name())
	if _, err := caFile.Write(caPEM); err != nil {
		log.Fatalf("CA file: %v", err)
	}
	_ = caFile.Close()

	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
	model.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(*user, *pass)}
	server := model.Service.NewServer()
	defer server.Close()

	ctl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("control listener: %v", err)
	}
	go func() { _ = http.Serve(ctl, control(model, server)) }()

	sdk := *server.URL
	sdk.User = nil
	hello := map[string]interface{}{
		"url":      sdk.String(),
		"username": *user,
		"password": *pass,
		"control":  "http://" + ctl.Addr().String(),
		"ca_file":  caFile.Name(),
		"clusters": clusters(),
	}
	line, _ := json.Marshal(hello)
	fmt.Println(string(line))
	_ = os.Stdout.Sync()

	// Run until the parent closes stdin (or dies).
	_, _ = io.Copy(ioutil.Discard, os.Stdin)
}

func control(model *simulator.Model, server *simulator.Server) http.Handler {
	mux := http.NewServeMux()
	var delayMu sync.Mutex
	reply := func(w http.ResponseWriter, v interface{}) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	bad := func(w http.ResponseWriter, format string, args ...interface{}) {
		http.Error(w, fmt.Sprintf(format, args...), http.StatusBadRequest)
	}
	lookupHost := func(w http.ResponseWriter, moid string) *slowHost {
		h, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "HostSystem", Value: moid}).(*slowHost)
		if !ok {
			bad(w, "no host %q", moid)
			return nil
		}
		return h
	}
	// vcsim compares disabled methods with its Go method names ("FooTask").
	goName := func(m string) string {
		if strings.HasSuffix(m, "_Task") {
			return strings.TrimSuffix(m, "_Task") + "Task"
		}
		return m
	}

	mux.HandleFunc("/state", func(w http.ResponseWriter, r *http.Request) {
		stateMu.Lock()
		defer stateMu.Unlock()
		lw := map[string]int{}
		for k, v := range lowWater {
			lw[k] = v
		}
		log := append([]transition(nil), mmLog...)
		reply(w, map[string]interface{}{"clusters": clusters(), "low_water": lw, "transitions": log})
	})
	mux.HandleFunc("/reset-watermark", func(w http.ResponseWriter, r *http.Request) {
		stateMu.Lock()
		defer stateMu.Unlock()
		mmLog = nil
		for _, c := range clusters() {
			n := 0
			for _, h := range c.Hosts {
				if h.Online {
					n++
				}
			}
			lowWater[c.Moid] = n
		}
		reply(w, lowWater)
	})
	mux.HandleFunc("/method-delay", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ms, err := strconv.Atoi(q.Get("ms"))
		if err != nil || q.Get("method") == "" {
			bad(w, "need method and ms")
			return
		}
		delayMu.Lock()
		defer delayMu.Unlock()
		// Copy-on-write: the SOAP handlers read this map without a lock.
		next := map[string]int{}
		for k, v := range model.DelayConfig.MethodDelay {
			next[k] = v
		}
		if ms == 0 {
			delete(next, q.Get("method"))
		} else {
			next[q.Get("method")] = ms
		}
		model.DelayConfig.MethodDelay = next
		reply(w, next)
	})
	mux.HandleFunc("/task-delay", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.ParseInt(r.URL.Query().Get("ms"), 10, 64)
		if err != nil || ms < 0 {
			bad(w, "need ms")
			return
		}
		atomicStore(&taskDelay, ms)
		reply(w, ms)
	})
	toggle := func(disable bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			h := lookupHost(w, q.Get("host"))
			if h == nil {
				return
			}
			m := goName(q.Get("method"))
			simulator.Map.WithLock(h, func() {
				var keep []string
				for _, d := range h.DisabledMethod {
					if d != m {
						keep = append(keep, d)
					}
				}
				if disable {
					keep = append(keep, m)
				}
				h.DisabledMethod = keep
			})
			reply(w, h.DisabledMethod)
		}
	}
	mux.HandleFunc("/disable", toggle(true))
	mux.HandleFunc("/enable", toggle(false))
	mux.HandleFunc("/host", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		h := lookupHost(w, q.Get("moid"))
		if h == nil {
			return
		}
		simulator.Map.WithLock(h, func() {
			stateMu.Lock()
			defer stateMu.Unlock()
			mmChanged := false
			if v := q.Get("connection"); v != "" {
				h.Runtime.ConnectionState = types.HostSystemConnectionState(v)
			}
			if v := q.Get("status"); v != "" {
				h.Summary.OverallStatus = types.ManagedEntityStatus(v)
				h.OverallStatus = types.ManagedEntityStatus(v)
			}
			if v := q.Get("power"); v != "" {
				h.Runtime.PowerState = types.HostSystemPowerState(v)
			}
			if v := q.Get("maintenance"); v != "" {
				b := v == "true"
				mmChanged = b != h.Runtime.InMaintenanceMode
				h.Runtime.InMaintenanceMode = b
			}
			noteChange(&h.HostSystem.HostSystem, mmChanged)
		})
		reply(w, describeHost(h.Self))
	})
	mux.HandleFunc("/cluster", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		c, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "ClusterComputeResource", Value: q.Get("moid")}).(*simulator.ClusterComputeResource)
		if !ok {
			bad(w, "no cluster %q", q.Get("moid"))
			return
		}
		simulator.Map.WithLock(c, func() {
			cfg := c.ConfigurationEx.(*types.ClusterConfigInfoEx)
			if v := q.Get("drs"); v != "" {
				cfg.DrsConfig.Enabled = types.NewBool(v == "true")
			}
			if v := q.Get("drs_behavior"); v != "" {
				cfg.DrsConfig.DefaultVmBehavior = types.DrsBehavior(v)
			}
			if v := q.Get("ha"); v != "" {
				cfg.DasConfig.Enabled = types.NewBool(v == "true")
			}
			if v := q.Get("status"); v != "" {
				c.OverallStatus = types.ManagedEntityStatus(v)
			}
		})
		reply(w, "ok")
	})
	mux.HandleFunc("/drop-sessions", func(w http.ResponseWriter, r *http.Request) {
		n, err := dropSessions(server)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		reply(w, n)
	})
	mux.HandleFunc("/sdk-status", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil {
			bad(w, "need code")
			return
		}
		simulator.StatusSDK = code
		reply(w, code)
	})
	return mux
}

// dropSessions ends every SOAP session but its own (then logs that one out):
// the next call of a client that was logged in meets NotAuthenticated, as
// after a vCenter restart or an idle-session expiry.
func dropSessions(server *simulator.Server) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := govmomi.NewClient(ctx, server.URL, true)
	if err != nil {
		return 0, err
	}
	m := session.NewManager(c.Client)
	var sm mo.SessionManager
	if err := c.RetrieveOne(ctx, *c.ServiceContent.SessionManager, []string{"sessionList", "currentSession"}, &sm); err != nil {
		return 0, err
	}
	var ids []string
	for _, s := range sm.SessionList {
		if sm.CurrentSession == nil || s.Key != sm.CurrentSession.Key {
			ids = append(ids, s.Key)
		}
	}
	if len(ids) > 0 {
		if err := m.TerminateSession(ctx, ids); err != nil {
			return 0, err
		}
	}
	return len(ids), c.Logout(ctx)
}

// makeCerts creates a throw-away CA and a server certificate it signs for
// 127.0.0.1/localhost. (The simulator's built-in certificate is self-signed
// with the CA flag, which strict verifiers such as rustls-webpki refuse as a
// server certificate, so it cannot exercise "trust this CA file".)
func makeCerts() (tls.Certificate, []byte, error) {
	var none tls.Certificate
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return none, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vcsim test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return none, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return none, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return none, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return none, nil, err
	}
	leaf := tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}
	return leaf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}
