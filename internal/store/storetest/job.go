package storetest

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-dev/drover/internal/job"
	"github.com/drover-dev/drover/internal/store"
)

// jobCases cover JobReader and JobWriter: job records, versions and
// idempotency keys.
func jobCases() []testCase {
	return []testCase{
		{"PutJobInsertsThenReplaces", testPutJob},
		{"GetJobMissing", testGetJobMissing},
		{"ListJobsOrderedByKey", testListJobs},
		{"JobVersionRoundTrip", testJobVersionRoundTrip},
		{"JobVersionMissing", testJobVersionMissing},
		{"ListJobVersionsNewestFirst", testListJobVersions},
		{"DuplicateJobVersion", testDuplicateJobVersion},
		{"DuplicateIdempotencyKey", testDuplicateIdempotencyKey},
		{"FindIdempotencyKey", testFindIdempotencyKey},
	}
}

func getJob(t *testing.T, s store.Store, key job.Key) job.Job {
	t.Helper()
	var got job.Job
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.GetJob(ctx, key)
		return err
	})
	return got
}

func getJobVersion(t *testing.T, s store.Store, key job.Key, version int) job.Version {
	t.Helper()
	var got job.Version
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.GetJobVersion(ctx, key, version)
		return err
	})
	return got
}

func insertJobVersion(t *testing.T, s store.Store, v job.Version) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertJobVersion(ctx, v) })
}

func testPutJob(t *testing.T, s store.Store) {
	first := NewJob()
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutJob(ctx, first) })
	got := getJob(t, s, first.Key)
	requireEqual(t, first, got)
	requireUTC(t, "job", &got.CreatedAt, &got.UpdatedAt)

	// A replacement moves the version, state and update time on; the
	// creation time is the first PutJob's, whatever the caller passes.
	second := NewJob(func(j *job.Job) {
		j.Version = 2
		j.Type = job.Service
		j.State = job.Succeeded
		j.CreatedAt = T0.Add(time.Hour)
		j.UpdatedAt = T0.Add(2*time.Hour + time.Nanosecond)
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutJob(ctx, second) })
	want := second
	want.CreatedAt = first.CreatedAt
	requireEqual(t, want, getJob(t, s, first.Key))

	var all []job.Job
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		all, err = r.ListJobs(ctx)
		return err
	})
	requireEqual(t, []job.Job{want}, all, "a replaced job is still one job")
}

func testGetJobMissing(t *testing.T, s store.Store) {
	requireNotFound(t, s, "job on an empty store", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetJob(ctx, DefaultKey)
		return err
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.PutJob(ctx, NewJob()) })
	requireNotFound(t, s, "other job", func(ctx context.Context, r store.Reader) error {
		_, err := r.GetJob(ctx, job.Key{Role: DefaultKey.Role, Env: DefaultKey.Env, Name: "other"})
		return err
	})
	err := s.Update(t.Context(), func(tx store.Tx) error {
		_, err := tx.GetJob(t.Context(), job.Key{Role: "nobody", Env: "prod", Name: "etl"})
		return err
	})
	require.ErrorIs(t, err, store.ErrNotFound, "missing job inside Update")
}

func testListJobs(t *testing.T, s store.Store) {
	var empty []job.Job
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		empty, err = r.ListJobs(ctx)
		return err
	})
	require.Empty(t, empty, "jobs of an empty store")

	keys := []job.Key{
		{Role: "web", Env: "prod", Name: "b"},
		{Role: "api", Env: "prod", Name: "z"},
		{Role: "web", Env: "dev", Name: "a"},
		{Role: "web", Env: "prod", Name: "a"},
		{Role: "api", Env: "dev", Name: "z"},
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, k := range keys {
			if err := tx.PutJob(ctx, NewJob(func(j *job.Job) { j.Key = k })); err != nil {
				return err
			}
		}
		return nil
	})
	want := make([]string, 0, len(keys))
	for _, k := range keys {
		want = append(want, k.String())
	}
	sort.Strings(want)

	var got []job.Job
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.ListJobs(ctx)
		return err
	})
	requireEqual(t, want, jobKeys(got))
}

func testJobVersionRoundTrip(t *testing.T, s store.Store) {
	in := NewJobVersion(func(v *job.Version) {
		v.Version = 7
		v.IdempotencyKey = "submit-3f9a"
		v.CreatedAt = T0.In(time.FixedZone("CEST", 2*60*60)).Add(time.Nanosecond)
	})
	// Within the writing transaction, and after commit, the version reads
	// back whole: spec, durations, env, constraints and the key filled in.
	var inTx job.Version
	update(t, s, func(ctx context.Context, tx store.Tx) (err error) {
		if err := tx.InsertJobVersion(ctx, in); err != nil {
			return err
		}
		inTx, err = tx.GetJobVersion(ctx, in.Key, in.Version)
		return err
	})
	requireEqual(t, in, inTx, "inside the writing transaction")
	got := getJobVersion(t, s, in.Key, in.Version)
	requireEqual(t, in, got)
	require.Equal(t, in.Key, got.Spec.Key, "Spec.Key is filled back from Key")
	requireUTC(t, "version", &got.CreatedAt)

	// A minimal spec keeps its zero values: no timeout, no env, no
	// constraints, no retries.
	minimal := NewJobVersion(func(v *job.Version) {
		v.Key = job.Key{Role: "ops", Env: "dev", Name: "tiny"}
		v.Spec = job.Spec{
			Type:      job.Service,
			Instances: 1,
			Task: job.TaskSpec{
				Command:   []string{"true"},
				Resources: job.Resources{CPU: 1, Memory: 1 << 20},
			},
		}
	})
	insertJobVersion(t, s, minimal)
	requireEqual(t, minimal, getJobVersion(t, s, minimal.Key, minimal.Version))
}

func testJobVersionMissing(t *testing.T, s store.Store) {
	insertJobVersion(t, s, NewJobVersion())
	for _, c := range []struct {
		name    string
		key     job.Key
		version int
	}{
		{"other version", DefaultKey, 2},
		{"version 0", DefaultKey, 0},
		{"other job", job.Key{Role: "web", Env: "prod", Name: "other"}, 1},
	} {
		requireNotFound(t, s, c.name, func(ctx context.Context, r store.Reader) error {
			_, err := r.GetJobVersion(ctx, c.key, c.version)
			return err
		})
	}
}

func testListJobVersions(t *testing.T, s store.Store) {
	list := func(key job.Key) []job.Version {
		t.Helper()
		var got []job.Version
		view(t, s, func(ctx context.Context, r store.Reader) (err error) {
			got, err = r.ListJobVersions(ctx, key)
			return err
		})
		return got
	}
	require.Empty(t, list(DefaultKey), "versions of a job never submitted")

	// Inserted out of order, in separate transactions, with another job's
	// versions in between: each version comes back whole, newest first.
	v1 := NewJobVersion(func(v *job.Version) { v.IdempotencyKey = "first" })
	v2 := NewJobVersion(func(v *job.Version) {
		v.Version = 2
		v.Spec.Instances = 5
		v.CreatedAt = T0.Add(time.Hour)
	})
	v10 := NewJobVersion(func(v *job.Version) {
		v.Version = 10 // sorted as a number, not as text
		v.Spec.Task.Command = []string{"true"}
		v.CreatedAt = T0.Add(2 * time.Hour)
	})
	other := NewJobVersion(func(v *job.Version) {
		v.Key.Name = "other"
		v.Version = 3
	})
	for _, v := range []job.Version{v2, other, v10, v1} {
		insertJobVersion(t, s, v)
	}
	got := list(DefaultKey)
	requireEqual(t, []job.Version{v10, v2, v1}, got)
	for i := range got {
		requireUTC(t, "version", &got[i].CreatedAt)
	}
	requireEqual(t, []job.Version{other}, list(other.Key), "another job's versions are its own")

	// Inside a write transaction, a version inserted there is listed.
	v11 := NewJobVersion(func(v *job.Version) { v.Version = 11 })
	var inTx []job.Version
	update(t, s, func(ctx context.Context, tx store.Tx) (err error) {
		if err := tx.InsertJobVersion(ctx, v11); err != nil {
			return err
		}
		inTx, err = tx.ListJobVersions(ctx, DefaultKey)
		return err
	})
	requireEqual(t, []job.Version{v11, v10, v2, v1}, inTx, "inside the writing transaction")
}

func testDuplicateJobVersion(t *testing.T, s store.Store) {
	v1 := NewJobVersion(func(v *job.Version) { v.IdempotencyKey = "first" })
	insertJobVersion(t, s, v1)

	dup := NewJobVersion(func(v *job.Version) {
		v.IdempotencyKey = "second"
		v.Spec.Instances = 9
	})
	err := s.Update(t.Context(), func(tx store.Tx) error { return tx.InsertJobVersion(t.Context(), dup) })
	require.ErrorIs(t, err, store.ErrConflict)
	requireEqual(t, v1, getJobVersion(t, s, v1.Key, 1), "the stored version is untouched")
	requireNotFound(t, s, "the duplicate's idempotency key", func(ctx context.Context, r store.Reader) error {
		_, err := r.FindIdempotencyKey(ctx, "second")
		return err
	})

	// The same number under another job, and the next number, are fine.
	insertJobVersion(t, s, NewJobVersion(func(v *job.Version) { v.Key.Name = "other" }))
	insertJobVersion(t, s, NewJobVersion(func(v *job.Version) { v.Version = 2 }))
}

func testDuplicateIdempotencyKey(t *testing.T, s store.Store) {
	insertJobVersion(t, s, NewJobVersion(func(v *job.Version) { v.IdempotencyKey = "k1" }))
	for _, c := range []struct {
		name string
		v    job.Version
	}{
		{"same job, next version", NewJobVersion(func(v *job.Version) {
			v.Version = 2
			v.IdempotencyKey = "k1"
		})},
		{"other job", NewJobVersion(func(v *job.Version) {
			v.Key.Name = "other"
			v.IdempotencyKey = "k1"
		})},
	} {
		err := s.Update(t.Context(), func(tx store.Tx) error { return tx.InsertJobVersion(t.Context(), c.v) })
		require.ErrorIs(t, err, store.ErrConflict, c.name)
		requireNotFound(t, s, c.name+": the refused version", func(ctx context.Context, r store.Reader) error {
			_, err := r.GetJobVersion(ctx, c.v.Key, c.v.Version)
			return err
		})
	}

	// Submissions without a key never conflict with each other.
	for v := 2; v <= 4; v++ {
		insertJobVersion(t, s, NewJobVersion(func(jv *job.Version) { jv.Version = v }))
	}
}

func testFindIdempotencyKey(t *testing.T, s store.Store) {
	v1 := NewJobVersion()
	v2 := NewJobVersion(func(v *job.Version) {
		v.Version = 2
		v.IdempotencyKey = "deploy-2"
		v.Spec.Instances = 5
	})
	other := NewJobVersion(func(v *job.Version) {
		v.Key.Name = "other"
		v.IdempotencyKey = "deploy-other"
	})
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, v := range []job.Version{v1, v2, other} {
			if err := tx.InsertJobVersion(ctx, v); err != nil {
				return err
			}
		}
		return nil
	})

	var got job.Version
	view(t, s, func(ctx context.Context, r store.Reader) (err error) {
		got, err = r.FindIdempotencyKey(ctx, "deploy-2")
		return err
	})
	requireEqual(t, v2, got)

	for _, key := range []string{"deploy-3", "DEPLOY-2", ""} {
		requireNotFound(t, s, "idempotency key "+key, func(ctx context.Context, r store.Reader) error {
			_, err := r.FindIdempotencyKey(ctx, key)
			return err
		})
	}
}
