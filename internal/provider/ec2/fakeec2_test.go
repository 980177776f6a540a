package ec2

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeEC2 is an in-process EC2 that speaks the subset of the EC2 Query
// API the provider uses, as the real service does: form-encoded POSTs
// with Action and Version=2016-11-15, XML answers in the 2016-11-15
// namespace, and errors as <Response><Errors><Error> documents with the
// status EC2 gives them. It keeps instances in memory, honours ClientToken,
// tag and state filters and MaxResults/NextToken paging, and can be told
// to throttle or to refuse a launch.
//
// Written by hand because no maintained Go library fakes EC2's wire
// protocol; the real EC2 cannot be reached from tests.
type fakeEC2 struct {
	srv *httptest.Server
	// pageSize caps a DescribeInstances page below the caller's
	// MaxResults, as EC2 may, to force paging with few instances.
	pageSize int

	mu        sync.Mutex
	instances []*fakeInstance // in launch order
	byToken   map[string]*fakeInstance
	requests  []fakeRequest
	throttles int        // coming requests to refuse with RequestLimitExceeded
	runErr    *fakeError // the next RunInstances fails with this
}

// fakeInstance is one instance with the request that made it.
type fakeInstance struct {
	id       string
	state    string
	launched time.Time
	ip       string
	form     url.Values                   // the RunInstances request
	tags     map[string]map[string]string // resource type -> tags
}

// fakeRequest is one request the fake answered.
type fakeRequest struct {
	action        string
	form          url.Values
	authorization string
}

// fakeError is an EC2 error answer.
type fakeError struct {
	status  int
	code    string
	message string
}

// fakeEpoch is when the fake's first instance launched; each next one
// launched a minute later.
var fakeEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newFakeEC2(t *testing.T) *fakeEC2 {
	f := &fakeEC2{pageSize: 1000, byToken: make(map[string]*fakeInstance)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	t.Cleanup(f.srv.Close)
	return f
}

// throttle makes the next n requests fail with RequestLimitExceeded.
func (f *fakeEC2) throttle(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttles = n
}

// failNextRun makes the next RunInstances fail with code and message.
func (f *fakeEC2) failNextRun(status int, code, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runErr = &fakeError{status: status, code: code, message: message}
}

// setState moves instance id to state, as EC2 does over time.
func (f *fakeEC2) setState(id, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, in := range f.instances {
		if in.id == id {
			in.state = state
		}
	}
}

// instance returns a copy of instance id, or false.
func (f *fakeEC2) instance(id string) (fakeInstance, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, in := range f.instances {
		if in.id == id {
			return *in, true
		}
	}
	return fakeInstance{}, false
}

// instanceCount is how many instances were ever launched.
func (f *fakeEC2) instanceCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.instances)
}

// requestsOf returns the requests of action answered so far.
func (f *fakeEC2) requestsOf(action string) []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var rs []fakeRequest
	for _, r := range f.requests {
		if r.action == action {
			rs = append(rs, r)
		}
	}
	return rs
}

func (f *fakeEC2) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, fakeError{http.StatusMethodNotAllowed, "InvalidAction", "the EC2 Query API takes POST, not " + r.Method})
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		writeError(w, fakeError{http.StatusBadRequest, "InvalidParameterValue", "content type " + ct + " is not form-encoded"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, fakeError{http.StatusBadRequest, "InvalidParameterValue", err.Error()})
		return
	}
	form := r.PostForm
	action := form.Get("Action")

	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, fakeRequest{action: action, form: form, authorization: r.Header.Get("Authorization")})
	if v := form.Get("Version"); v != "2016-11-15" {
		writeError(w, fakeError{http.StatusBadRequest, "InvalidParameterValue", "unsupported API version " + v})
		return
	}
	if f.throttles > 0 {
		f.throttles--
		writeError(w, fakeError{http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded."})
		return
	}
	var (
		body any
		ferr *fakeError
	)
	switch action {
	case "RunInstances":
		body, ferr = f.runInstancesLocked(form)
	case "DescribeInstances":
		body, ferr = f.describeInstancesLocked(form)
	case "TerminateInstances":
		body, ferr = f.terminateInstancesLocked(form)
	default:
		ferr = &fakeError{http.StatusBadRequest, "InvalidAction", "The action " + action + " is not valid for this web service."}
	}
	if ferr != nil {
		writeError(w, *ferr)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(body)
}

func (f *fakeEC2) runInstancesLocked(form url.Values) (any, *fakeError) {
	if form.Get("MinCount") != "1" || form.Get("MaxCount") != "1" {
		return nil, &fakeError{http.StatusBadRequest, "InvalidParameterValue", "this fake launches one instance at a time"}
	}
	for _, p := range []string{"ImageId", "InstanceType"} {
		if form.Get(p) == "" {
			return nil, &fakeError{http.StatusBadRequest, "MissingParameter", "The request must contain the parameter " + p}
		}
	}
	if _, err := base64.StdEncoding.DecodeString(form.Get("UserData")); err != nil {
		return nil, &fakeError{http.StatusBadRequest, "InvalidParameterValue", "Invalid BASE64 encoding of user data."}
	}
	token := form.Get("ClientToken")
	if in, ok := f.byToken[token]; ok && token != "" {
		for _, p := range []string{"ImageId", "InstanceType", "UserData"} {
			if in.form.Get(p) != form.Get(p) {
				return nil, &fakeError{http.StatusBadRequest, "IdempotentParameterMismatch", "parameters differ from the first request with this client token"}
			}
		}
		return runResponse(in), nil
	}
	if f.runErr != nil {
		e := *f.runErr
		f.runErr = nil
		return nil, &e
	}
	in := &fakeInstance{
		id:       fmt.Sprintf("i-%017x", 0xd0000+len(f.instances)),
		state:    "pending",
		launched: fakeEpoch.Add(time.Duration(len(f.instances)) * time.Minute),
		ip:       fmt.Sprintf("10.0.%d.%d", len(f.instances)/250, 1+len(f.instances)%250),
		form:     form,
		tags:     make(map[string]map[string]string),
	}
	for n := 1; form.Has(fmt.Sprintf("TagSpecification.%d.ResourceType", n)); n++ {
		prefix := fmt.Sprintf("TagSpecification.%d.", n)
		tags := make(map[string]string)
		for m := 1; form.Has(fmt.Sprintf("%sTag.%d.Key", prefix, m)); m++ {
			tags[form.Get(fmt.Sprintf("%sTag.%d.Key", prefix, m))] = form.Get(fmt.Sprintf("%sTag.%d.Value", prefix, m))
		}
		in.tags[form.Get(prefix+"ResourceType")] = tags
	}
	f.instances = append(f.instances, in)
	if token != "" {
		f.byToken[token] = in
	}
	return runResponse(in), nil
}

func (f *fakeEC2) describeInstancesLocked(form url.Values) (any, *fakeError) {
	type filter struct {
		name   string
		values []string
	}
	var filters []filter
	for n := 1; form.Has(fmt.Sprintf("Filter.%d.Name", n)); n++ {
		fl := filter{name: form.Get(fmt.Sprintf("Filter.%d.Name", n))}
		for m := 1; form.Has(fmt.Sprintf("Filter.%d.Value.%d", n, m)); m++ {
			fl.values = append(fl.values, form.Get(fmt.Sprintf("Filter.%d.Value.%d", n, m)))
		}
		if fl.name != "instance-state-name" && !strings.HasPrefix(fl.name, "tag:") {
			return nil, &fakeError{http.StatusBadRequest, "InvalidParameterValue", "The filter '" + fl.name + "' is invalid"}
		}
		filters = append(filters, fl)
	}
	limit := 1000
	if v := form.Get("MaxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 || n > 1000 {
			return nil, &fakeError{http.StatusBadRequest, "InvalidParameterValue", "MaxResults must be between 5 and 1000"}
		}
		limit = n
	}
	limit = min(limit, f.pageSize)
	start := 0
	if tok := form.Get("NextToken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || err2 != nil || !strings.HasPrefix(string(b), "offset:") {
			return nil, &fakeError{http.StatusBadRequest, "InvalidParameterValue", "Invalid NextToken"}
		}
		start = n
	}

	var matched []*fakeInstance
	for _, in := range f.instances {
		ok := true
		for _, fl := range filters {
			var v string
			var has bool
			if fl.name == "instance-state-name" {
				v, has = in.state, true
			} else {
				v, has = in.tags["instance"][strings.TrimPrefix(fl.name, "tag:")]
			}
			if !has || !slices.Contains(fl.values, v) {
				ok = false
			}
		}
		if ok {
			matched = append(matched, in)
		}
	}
	resp := xmlDescribeResponse{RequestID: newRequestID()}
	end := min(start+limit, len(matched))
	for _, in := range matched[min(start, end):end] {
		resp.Reservations = append(resp.Reservations, xmlReservation{
			ReservationID: "r-" + strings.TrimPrefix(in.id, "i-"),
			OwnerID:       "123456789012",
			Instances:     []xmlInstance{instanceXML(in)},
		})
	}
	if end < len(matched) {
		resp.NextToken = base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	return resp, nil
}

func (f *fakeEC2) terminateInstancesLocked(form url.Values) (any, *fakeError) {
	var ids []string
	for n := 1; form.Has(fmt.Sprintf("InstanceId.%d", n)); n++ {
		ids = append(ids, form.Get(fmt.Sprintf("InstanceId.%d", n)))
	}
	if len(ids) == 0 {
		return nil, &fakeError{http.StatusBadRequest, "MissingParameter", "The request must contain the parameter InstanceId"}
	}
	resp := xmlTerminateResponse{RequestID: newRequestID()}
	for _, id := range ids {
		var found *fakeInstance
		for _, in := range f.instances {
			if in.id == id {
				found = in
			}
		}
		if found == nil {
			return nil, &fakeError{http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '" + id + "' does not exist"}
		}
		prev := found.state
		if prev != "terminated" {
			found.state = "shutting-down"
		}
		resp.Changes = append(resp.Changes, xmlStateChange{
			InstanceID: id, Current: stateXML(found.state), Previous: stateXML(prev),
		})
	}
	return resp, nil
}

func writeError(w http.ResponseWriter, e fakeError) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(xmlErrorResponse{
		Errors:    []xmlError{{Code: e.code, Message: e.message}},
		RequestID: newRequestID(),
	})
}

var requestSeq struct {
	sync.Mutex
	n int
}

func newRequestID() string {
	requestSeq.Lock()
	defer requestSeq.Unlock()
	requestSeq.n++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", requestSeq.n)
}

func runResponse(in *fakeInstance) xmlRunResponse {
	return xmlRunResponse{
		RequestID:     newRequestID(),
		ReservationID: "r-" + strings.TrimPrefix(in.id, "i-"),
		OwnerID:       "123456789012",
		Instances:     []xmlInstance{instanceXML(in)},
	}
}

func instanceXML(in *fakeInstance) xmlInstance {
	x := xmlInstance{
		InstanceID:   in.id,
		ImageID:      in.form.Get("ImageId"),
		State:        stateXML(in.state),
		InstanceType: in.form.Get("InstanceType"),
		LaunchTime:   in.launched.Format("2006-01-02T15:04:05.000Z"),
		PrivateIP:    in.ip,
		ClientToken:  in.form.Get("ClientToken"),
	}
	if in.form.Get("InstanceMarketOptions.MarketType") == "spot" {
		x.Lifecycle = "spot"
	}
	keys := make([]string, 0, len(in.tags["instance"]))
	for k := range in.tags["instance"] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		x.Tags = append(x.Tags, xmlTag{Key: k, Value: in.tags["instance"][k]})
	}
	return x
}

func stateXML(name string) xmlState {
	codes := map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
	return xmlState{Code: codes[name], Name: name}
}

// The XML documents of EC2's answers, as far as the provider reads them.

type xmlRunResponse struct {
	XMLName       xml.Name      `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ RunInstancesResponse"`
	RequestID     string        `xml:"requestId"`
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type xmlDescribeResponse struct {
	XMLName      xml.Name         `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeInstancesResponse"`
	RequestID    string           `xml:"requestId"`
	Reservations []xmlReservation `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

type xmlReservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type xmlTerminateResponse struct {
	XMLName   xml.Name         `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ TerminateInstancesResponse"`
	RequestID string           `xml:"requestId"`
	Changes   []xmlStateChange `xml:"instancesSet>item"`
}

type xmlStateChange struct {
	InstanceID string   `xml:"instanceId"`
	Current    xmlState `xml:"currentState"`
	Previous   xmlState `xml:"previousState"`
}

type xmlInstance struct {
	InstanceID   string   `xml:"instanceId"`
	ImageID      string   `xml:"imageId"`
	State        xmlState `xml:"instanceState"`
	PrivateIP    string   `xml:"privateIpAddress,omitempty"`
	InstanceType string   `xml:"instanceType"`
	LaunchTime   string   `xml:"launchTime"`
	Lifecycle    string   `xml:"instanceLifecycle,omitempty"`
	ClientToken  string   `xml:"clientToken,omitempty"`
	Tags         []xmlTag `xml:"tagSet>item"`
}

type xmlState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xmlErrorResponse struct {
	XMLName   xml.Name   `xml:"Response"`
	Errors    []xmlError `xml:"Errors>Error"`
	RequestID string     `xml:"RequestID"`
}

type xmlError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}
