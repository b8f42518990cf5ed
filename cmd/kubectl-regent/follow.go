package main

import (
	"cmp"
	"context"
	"errors"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// leaseClient is the Leases of one namespace, or of all ("").
type leaseClient = coordinationv1client.LeaseInterface

// follow reads the Lease ns/name and then follows it by a watch, calling fn with each version in
// order (nil while it is absent) until fn returns true, fn fails, or ctx ends.
func follow(ctx context.Context, leases leaseClient, ns, name string, fn func(*coordinationv1.Lease) (bool, error)) error {
	return followLeases(ctx, leases, "metadata.name="+name, []string{ns + "/" + name},
		func(_ string, l *coordinationv1.Lease) (bool, error) { return fn(l) })
}

// followLeases lists the Leases of leases that match the field selector (empty: all) and then
// follows them by a watch, calling fn with each version in order, keyed namespace/name, with nil
// for a Lease deleted (or, for a key of expect, absent from the first list), until fn returns
// true, fn fails, or ctx ends. A watch that ends is opened again from the last version seen;
// after a watch error (the version is too old) it lists again and reports the Leases gone
// meanwhile as deleted.
func followLeases(ctx context.Context, leases leaseClient, selector string, expect []string, fn func(key string, l *coordinationv1.Lease) (bool, error)) error {
	known := map[string]bool{}
	for _, k := range expect {
		known[k] = true
	}
	key := func(l *coordinationv1.Lease) string { return l.Namespace + "/" + l.Name }
	call := func(k string, l *coordinationv1.Lease) error {
		if done, err := fn(k, l); err != nil || done {
			return cmp.Or(err, errDone)
		}
		return nil
	}
	relist := func() (string, error) {
		list, err := leases.List(ctx, metav1.ListOptions{FieldSelector: selector})
		if err != nil {
			return "", err
		}
		listed := map[string]bool{}
		for i := range list.Items {
			k := key(&list.Items[i])
			listed[k] = true
			if err := call(k, &list.Items[i]); err != nil {
				return "", err
			}
		}
		for k := range known {
			if !listed[k] {
				if err := call(k, nil); err != nil {
					return "", err
				}
			}
		}
		known = listed
		return list.ResourceVersion, nil
	}
	rv, err := relist()
	for err == nil {
		var w watch.Interface
		if w, err = leases.Watch(ctx, metav1.ListOptions{FieldSelector: selector, ResourceVersion: rv, AllowWatchBookmarks: true}); err != nil {
			break
		}
		stale := false
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				stale = true
				break
			}
			l, ok := ev.Object.(*coordinationv1.Lease)
			if !ok {
				continue
			}
			rv = l.ResourceVersion
			switch ev.Type {
			case watch.Bookmark:
				continue
			case watch.Deleted:
				delete(known, key(l))
				err = call(key(l), nil)
			default:
				known[key(l)] = true
				err = call(key(l), l)
			}
			if err != nil {
				break
			}
		}
		w.Stop()
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		if err == nil && stale {
			rv, err = relist()
		}
	}
	if errors.Is(err, errDone) {
		return nil
	}
	return err
}

// errDone ends followLeases when fn says it is done.
var errDone = errors.New("done")
