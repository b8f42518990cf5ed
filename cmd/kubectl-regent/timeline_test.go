package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regent-k8s/regent/lock"
)

func record(holder string, transitions int32, renew time.Time, annotations map[string]string) *coordinationv1.Lease {
	d, rt := int32(15), metav1.NewMicroTime(renew)
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "lock", Namespace: "ns", Annotations: annotations},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &d, AcquireTime: &rt, RenewTime: &rt, LeaseTransitions: &transitions},
	}
}

func TestTheTimelineNamesEachChangeOfTheRecord(t *testing.T) {
	var out bytes.Buffer
	tl := &timeline{out: &out}
	defer tl.stop()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []*coordinationv1.Lease{
		record("a", 1, t0, nil),
		record("a", 1, t0.Add(2*time.Second), nil), // a renewal: not printed without --renewals
		record("a", 1, t0.Add(2*time.Second), map[string]string{lock.HandoverToAnnotation: "b"}),
		record("a", 1, t0.Add(3*time.Second), map[string]string{lock.HandoverToAnnotation: "b", lock.HandoverOfAnnotation: "uid/1"}),
		record("b", 2, t0.Add(3*time.Second), nil),
		record("", 2, t0.Add(4*time.Second), nil),
		nil,
	}
	for i, l := range steps {
		tl.observe(l, t0.Add(time.Duration(i)*time.Second))
	}
	var events []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		events = append(events, strings.Join(strings.Fields(line)[1:3], " "))
	}
	want := []string{"held a", "handover requested", "handed over", "acquired b", "released b", "deleted the"}
	if strings.Join(events, "|") != strings.Join(want, "|") {
		t.Fatalf("timeline:\n%s\nwant events %v", out.String(), want)
	}
}

func TestListShowsElectionRecordsNotHeartbeats(t *testing.T) {
	node := "node-1"
	d := int32(40)
	heartbeat := &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: &node, LeaseDurationSeconds: &d}}
	if isElectionRecord(heartbeat) {
		t.Error("a node's heartbeat Lease was taken for a lock")
	}
	if !isElectionRecord(record("", 3, time.Now(), nil)) {
		t.Error("a free election record was not taken for a lock")
	}
	now := time.Now()
	v := leaseView(record("a", 3, now.Add(-4*time.Second), nil), now)
	if v.Holder != "a" || v.Token != "3" || v.ExpiresIn == nil || time.Duration(*v.ExpiresIn) != 11*time.Second {
		t.Fatalf("view %+v, want holder a, token 3, expiring in 11s", v)
	}
}

func TestOutputFormats(t *testing.T) {
	views := []lockView{{Namespace: "ns", Name: "lock", Kind: kindLease, Holder: "a", Token: "3", ExpiresIn: durationOf(1500 * time.Millisecond)}}
	for format, want := range map[string]string{
		"":     "EXPIRES IN",
		"wide": "HANDOVER TO",
		"json": `"expiresInSeconds": 1.500`,
		"yaml": "expiresInSeconds: 1.5",
	} {
		var out bytes.Buffer
		if err := printLocks(&out, format, views, false); err != nil || !strings.Contains(out.String(), want) {
			t.Errorf("-o %q: %v\n%s\nwant %q", format, err, out.String(), want)
		}
	}
	if err := checkOutput("table"); err == nil || !strings.Contains(err.Error(), "wide, json and yaml") {
		t.Errorf("-o table = %v, want an error naming what is accepted", err)
	}
}
