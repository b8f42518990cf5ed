package main

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// follow reads the Lease name and then follows it by a watch, calling fn with each version in
// order (nil while it is absent) until fn returns true, fn fails, or ctx ends. A watch that ends
// is opened again from the last version seen, or after a fresh read if that version is too old.
func follow(ctx context.Context, leases coordinationv1client.LeaseInterface, name string, fn func(*coordinationv1.Lease) (bool, error)) error {
	rv := ""
	read := func() error {
		cur, err := leases.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			cur = nil
			list, lerr := leases.List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
			if lerr != nil {
				return lerr
			}
			rv = list.ResourceVersion
		case err != nil:
			return err
		default:
			rv = cur.ResourceVersion
		}
		done, err := fn(cur)
		if err == nil && done {
			return errDone
		}
		return err
	}
	if err := read(); err != nil {
		return ignoreDone(err)
	}
	for {
		w, err := leases.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("watch lease %s: %w", name, err)
		}
		err = func() error {
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case ev, ok := <-w.ResultChan():
					if !ok {
						return nil // reopen from rv
					}
					switch ev.Type {
					case watch.Error:
						return read() // the version is too old: read afresh
					case watch.Bookmark:
						if l, ok := ev.Object.(*coordinationv1.Lease); ok {
							rv = l.ResourceVersion
						}
						continue
					}
					l, ok := ev.Object.(*coordinationv1.Lease)
					if !ok {
						continue
					}
					rv = l.ResourceVersion
					if ev.Type == watch.Deleted {
						l = nil
					}
					done, err := fn(l)
					if err != nil {
						return err
					}
					if done {
						return errDone
					}
				}
			}
		}()
		if err != nil {
			return ignoreDone(err)
		}
	}
}

var errDone = fmt.Errorf("done")

func ignoreDone(err error) error {
	if err == errDone {
		return nil
	}
	return err
}

// leaseClient is the Leases of one namespace.
type leaseClient = coordinationv1client.LeaseInterface

// followAll lists the Leases of leases (one namespace, or all) and then follows them by a watch,
// calling fn with each version in order, keyed namespace/name (nil once deleted), until ctx
// ends. After a watch error it lists again, and reports the Leases gone meanwhile as deleted.
func followAll(ctx context.Context, leases leaseClient, fn func(key string, l *coordinationv1.Lease)) error {
	known := map[string]bool{}
	key := func(l *coordinationv1.Lease) string { return l.Namespace + "/" + l.Name }
	relist := func() (string, error) {
		list, err := leases.List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", err
		}
		now := map[string]bool{}
		for i := range list.Items {
			k := key(&list.Items[i])
			now[k] = true
			fn(k, &list.Items[i])
		}
		for k := range known {
			if !now[k] {
				fn(k, nil)
			}
		}
		known = now
		return list.ResourceVersion, nil
	}
	rv, err := relist()
	for err == nil {
		var w watch.Interface
		w, err = leases.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			break
		}
		relistNeeded := false
		for ev := range w.ResultChan() {
			l, ok := ev.Object.(*coordinationv1.Lease)
			switch {
			case ev.Type == watch.Error:
				relistNeeded = true
			case !ok:
				continue
			case ev.Type == watch.Bookmark:
				rv = l.ResourceVersion
			case ev.Type == watch.Deleted:
				rv = l.ResourceVersion
				delete(known, key(l))
				fn(key(l), nil)
			default:
				rv = l.ResourceVersion
				known[key(l)] = true
				fn(key(l), l)
			}
			if relistNeeded {
				break
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if relistNeeded {
			rv, err = relist()
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
