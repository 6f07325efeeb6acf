/*
 * The shim's process state machine (shim/proc.c): every event in every state, for an init and
 * for an exec, against the expectations below (written by event, the other way round from the
 * machine's table); then the interleavings that race in a real shim: Kill during Start, Delete
 * during Start and during Wait, an exit before Start returns, Pause against Pause and exit.
 */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "shim/proc-internal.h"

#define CREATING SHIM_PROC_CREATING
#define CREATED  SHIM_PROC_CREATED
#define STARTING SHIM_PROC_STARTING
#define RUNNING  SHIM_PROC_RUNNING
#define PAUSED   SHIM_PROC_PAUSED
#define STOPPED  SHIM_PROC_STOPPED
#define DELETING SHIM_PROC_DELETING

#define PSTART SHIM_PFX_PUBLISH_START
#define PEXIT  SHIM_PFX_PUBLISH_EXIT
#define SIG    SHIM_PFX_SIGNAL
#define CHG    SHIM_PFX_CHANGED

enum who { BOTH, INIT, EXEC };

/* One expectation: in state `from`, event `ev` gives `to` with effects `fx` (err == 0), or is
 * refused with -err and a message holding `text`. Anything not listed: refused, EBUSY. */
struct expect {
        enum who who;
        enum shim_proc_event ev;
        enum shim_proc_state from;
        int err;
        enum shim_proc_state to;
        unsigned fx;
        const char *text;
};

#define OK(w, e, f, t, x)                         \
        {                                         \
                w, SHIM_PEV_##e, f, 0, t, x, NULL \
        }
#define BAD(w, e, f, n, s)                     \
        {                                      \
                w, SHIM_PEV_##e, f, n, f, 0, s \
        }

/* clang-format off */
static const struct expect expects[] = {
        /* LOOKUP: every state but CREATING is visible. */
        BAD(BOTH, LOOKUP, CREATING, ENOENT, "not found (creating)"),
        OK(BOTH, LOOKUP, CREATED, CREATED, 0),
        OK(BOTH, LOOKUP, STARTING, STARTING, 0),
        OK(BOTH, LOOKUP, RUNNING, RUNNING, 0),
        OK(BOTH, LOOKUP, PAUSED, PAUSED, 0),
        OK(BOTH, LOOKUP, STOPPED, STOPPED, 0),
        OK(BOTH, LOOKUP, DELETING, DELETING, 0),
        /* CREATED: only from CREATING. */
        OK(BOTH, CREATED, CREATING, CREATED, CHG),
        /* START */
        BAD(BOTH, START, CREATING, ENOENT, "not found (creating -> starting)"),
        OK(BOTH, START, CREATED, STARTING, CHG),
        BAD(BOTH, START, STARTING, EBUSY, "process already started (starting -> starting)"),
        BAD(BOTH, START, RUNNING, EBUSY, "process already started (running -> starting)"),
        BAD(BOTH, START, PAUSED, EBUSY, "process already started (paused -> starting)"),
        BAD(BOTH, START, STOPPED, EBUSY, "process already started (stopped -> starting)"),
        BAD(BOTH, START, DELETING, ENOENT, "not found (deleting -> starting)"),
        /* STARTED, START_FAILED: only from STARTING. */
        OK(BOTH, STARTED, STARTING, RUNNING, PSTART | CHG),
        OK(INIT, START_FAILED, STARTING, CREATED, CHG),
        OK(EXEC, START_FAILED, STARTING, STOPPED, CHG),
        /* PAUSE, PAUSE_FAILED */
        BAD(BOTH, PAUSE, CREATING, ENOENT, "not found"),
        BAD(BOTH, PAUSE, CREATED, EBUSY, "not running (created -> paused)"),
        BAD(BOTH, PAUSE, STARTING, EBUSY, "not running (starting -> paused)"),
        OK(BOTH, PAUSE, RUNNING, PAUSED, CHG),
        BAD(BOTH, PAUSE, PAUSED, EBUSY, "not running (paused -> paused)"),
        BAD(BOTH, PAUSE, STOPPED, EBUSY, "not running (stopped -> paused)"),
        BAD(BOTH, PAUSE, DELETING, ENOENT, "not found"),
        OK(BOTH, PAUSE_FAILED, RUNNING, RUNNING, 0),
        OK(BOTH, PAUSE_FAILED, PAUSED, RUNNING, CHG),
        OK(BOTH, PAUSE_FAILED, STOPPED, STOPPED, 0),
        OK(BOTH, PAUSE_FAILED, DELETING, DELETING, 0),
        /* RESUME, RESUME_FAILED */
        BAD(BOTH, RESUME, CREATING, ENOENT, "not found"),
        BAD(BOTH, RESUME, CREATED, EBUSY, "not paused (created -> running)"),
        BAD(BOTH, RESUME, STARTING, EBUSY, "not paused"),
        BAD(BOTH, RESUME, RUNNING, EBUSY, "not paused (running -> running)"),
        OK(BOTH, RESUME, PAUSED, RUNNING, CHG),
        BAD(BOTH, RESUME, STOPPED, EBUSY, "not paused"),
        BAD(BOTH, RESUME, DELETING, ENOENT, "not found"),
        OK(BOTH, RESUME_FAILED, RUNNING, PAUSED, CHG),
        OK(BOTH, RESUME_FAILED, PAUSED, PAUSED, 0),
        OK(BOTH, RESUME_FAILED, STOPPED, STOPPED, 0),
        OK(BOTH, RESUME_FAILED, DELETING, DELETING, 0),
        /* KILL: an init never started exits at once; an exec never started is refused; a
         * Start in flight makes it wait (-EAGAIN). */
        BAD(BOTH, KILL, CREATING, ENOENT, "not found"),
        OK(INIT, KILL, CREATED, STOPPED, CHG),
        BAD(EXEC, KILL, CREATED, EBUSY, "process not created (created -> stopped)"),
        BAD(BOTH, KILL, STARTING, EAGAIN, NULL),
        OK(BOTH, KILL, RUNNING, RUNNING, SIG),
        OK(BOTH, KILL, PAUSED, PAUSED, SIG),
        BAD(BOTH, KILL, STOPPED, ENOENT, "process already finished (stopped -> stopped)"),
        BAD(BOTH, KILL, DELETING, ENOENT, "process already finished"),
        /* EXEC: a check on the init, no transition. */
        BAD(BOTH, EXEC, CREATING, ENOENT, "not found (creating)"),
        BAD(BOTH, EXEC, CREATED, EBUSY, "not running (created)"),
        BAD(BOTH, EXEC, STARTING, EBUSY, "not running (starting)"),
        OK(BOTH, EXEC, RUNNING, RUNNING, 0),
        OK(BOTH, EXEC, PAUSED, PAUSED, 0),
        BAD(BOTH, EXEC, STOPPED, EBUSY, "not running (stopped)"),
        BAD(BOTH, EXEC, DELETING, ENOENT, "not found (deleting)"),
        /* EXIT: published only after a start; held during a Start; repeats ignored. */
        OK(BOTH, EXIT, CREATING, CREATING, 0),
        OK(BOTH, EXIT, CREATED, STOPPED, CHG),
        OK(BOTH, EXIT, STARTING, STARTING, 0),
        OK(BOTH, EXIT, RUNNING, STOPPED, PEXIT | CHG),
        OK(BOTH, EXIT, PAUSED, STOPPED, PEXIT | CHG),
        OK(BOTH, EXIT, STOPPED, STOPPED, 0),
        OK(BOTH, EXIT, DELETING, DELETING, 0),
        /* DELETE: once exited or never started; waits for a Start in flight. */
        BAD(BOTH, DELETE, CREATING, ENOENT, "not found (creating -> deleting)"),
        OK(BOTH, DELETE, CREATED, DELETING, CHG),
        BAD(BOTH, DELETE, STARTING, EAGAIN, NULL),
        BAD(BOTH, DELETE, RUNNING, EBUSY, "still running; kill it first (running -> deleting)"),
        BAD(BOTH, DELETE, PAUSED, EBUSY, "still running; kill it first (paused -> deleting)"),
        OK(BOTH, DELETE, STOPPED, DELETING, CHG),
        BAD(BOTH, DELETE, DELETING, ENOENT, "not found (deleting -> deleting)"),
};
/* clang-format on */

static const struct expect *expect_for(bool exec, enum shim_proc_state from,
                                       enum shim_proc_event ev)
{
        for (size_t i = 0; i < sizeof(expects) / sizeof(expects[0]); i++) {
                const struct expect *x = &expects[i];
                if (x->from == from && x->ev == ev &&
                    (x->who == BOTH || x->who == (exec ? EXEC : INIT)))
                        return x;
        }
        return NULL;
}

static void check_one(bool exec, enum shim_proc_state from, enum shim_proc_event ev)
{
        static const struct expect illegal = {BOTH, 0, 0, EBUSY, 0, 0, "not allowed"};
        const struct expect *x = expect_for(exec, from, ev);
        if (!x)
                x = &illegal;
        struct shim_proc_sm m;
        shim_proc_sm_init(&m, exec);
        m.state = from;
        struct cc_error *err = NULL;
        unsigned fx = 0xdead;
        int want_check = x->err ? -x->err : 0;
        int r = shim_proc_check(&m, ev, NULL);
        if (r != want_check)
                fail_msg("%s %s, event %d: check gave %d, want %d", exec ? "exec" : "init",
                         shim_proc_state_name(from), ev, r, want_check);
        r = shim_proc_fire(&m, ev, 137, &fx, &err);
        char what[96];
        snprintf(what, sizeof(what), "%s in %s, event %d", exec ? "exec" : "init",
                 shim_proc_state_name(from), ev);
        if (x->err) {
                if (r != -x->err)
                        fail_msg("%s: %d, want %d", what, r, -x->err);
                assert_int_equal(m.state, from);
                if (x->text && (!err || !strstr(cc_error_message(err), x->text)))
                        fail_msg("%s: message '%s' lacks '%s'", what, cc_error_message(err),
                                 x->text);
                if (x->err == EAGAIN)
                        assert_null(err); /* internal: the caller waits, nobody reads it */
        } else {
                if (r != 0)
                        fail_msg("%s: refused: %s", what, cc_error_message(err));
                if (m.state != x->to)
                        fail_msg("%s: went to %s, want %s", what, shim_proc_state_name(m.state),
                                 shim_proc_state_name(x->to));
                if (fx != x->fx)
                        fail_msg("%s: effects %#x, want %#x", what, fx, x->fx);
        }
        cc_error_free(err);
}

/* Every state x every event, for an init and for an exec. */
static void test_every_transition(void **state)
{
        for (int exec = 0; exec < 2; exec++)
                for (int s = 0; s < _SHIM_PROC_STATE_MAX; s++)
                        for (int e = 0; e < _SHIM_PEV_MAX; e++)
                                check_one(exec, s, e);
}

/* An exit (or a kill) records its status and time; a second report changes neither. */
static void test_exit_recorded_once(void **state)
{
        struct shim_proc_sm m;
        shim_proc_sm_init(&m, false);
        m.state = RUNNING;
        assert_int_equal(m.exited_at.tv_sec, 0);
        assert_false(shim_proc_done(&m));
        assert_int_equal(shim_proc_fire(&m, SHIM_PEV_EXIT, 3, NULL, NULL), 0);
        assert_true(shim_proc_done(&m));
        assert_int_equal(m.exit_status, 3);
        assert_true(m.exited_at.tv_sec > 0);
        struct timespec at = m.exited_at;
        assert_int_equal(shim_proc_fire(&m, SHIM_PEV_EXIT, 255, NULL, NULL), 0);
        assert_int_equal(m.exit_status, 3);
        assert_int_equal(m.exited_at.tv_nsec, at.tv_nsec);
        /* Kill of an init never started: the kill's status is its exit. */
        shim_proc_sm_init(&m, false);
        m.state = CREATED;
        assert_int_equal(shim_proc_fire(&m, SHIM_PEV_KILL, 128 + 9, NULL, NULL), 0);
        assert_int_equal(m.state, STOPPED);
        assert_int_equal(m.exit_status, 137);
}

/* A sequence of fires on one process: each step's result, state and effects. */
struct step {
        enum shim_proc_event ev;
        uint32_t status;
        int r;
        enum shim_proc_state state;
        unsigned fx;
};

static void run_steps(bool exec, const struct step *steps, size_t n, uint32_t want_status)
{
        struct shim_proc_sm m;
        shim_proc_sm_init(&m, exec);
        for (size_t i = 0; i < n; i++) {
                unsigned fx = 0;
                struct cc_error *err = NULL;
                int r = shim_proc_fire(&m, steps[i].ev, steps[i].status, &fx, &err);
                if (r != steps[i].r || m.state != steps[i].state || fx != steps[i].fx)
                        fail_msg("step %zu (event %d): r %d state %s fx %#x, want r %d state %s "
                                 "fx %#x (%s)",
                                 i, steps[i].ev, r, shim_proc_state_name(m.state), fx, steps[i].r,
                                 shim_proc_state_name(steps[i].state), steps[i].fx,
                                 cc_error_message(err));
                cc_error_free(err);
        }
        assert_int_equal(m.exit_status, want_status);
}

#define RUN(exec, st, want) run_steps(exec, st, sizeof(st) / sizeof(st[0]), want)

/* Kill during Start waits for the outcome (-EAGAIN each time it looks), then signals the
 * running process; after a failed Start, the init never ran: the kill is its exit. */
static void test_kill_during_start(void **state)
{
        static const struct step ok[] = {
                {SHIM_PEV_CREATED, 0, 0, CREATED, CHG},
                {SHIM_PEV_START, 0, 0, STARTING, CHG},
                {SHIM_PEV_KILL, 137, -EAGAIN, STARTING, 0},
                {SHIM_PEV_KILL, 137, -EAGAIN, STARTING, 0},
                {SHIM_PEV_STARTED, 0, 0, RUNNING, PSTART | CHG},
                {SHIM_PEV_KILL, 137, 0, RUNNING, SIG},
                {SHIM_PEV_EXIT, 137, 0, STOPPED, PEXIT | CHG},
        };
        RUN(false, ok, 137);
        static const struct step failed[] = {
                {SHIM_PEV_CREATED, 0, 0, CREATED, CHG},
                {SHIM_PEV_START, 0, 0, STARTING, CHG},
                {SHIM_PEV_KILL, 143, -EAGAIN, STARTING, 0},
                {SHIM_PEV_START_FAILED, 255, 0, CREATED, CHG},
                {SHIM_PEV_KILL, 143, 0, STOPPED, CHG},
        };
        RUN(false, failed, 143);
        /* An exec whose Start failed has exited 255; the Kill that waited finds it finished. */
        static const struct step exec_failed[] = {
                {SHIM_PEV_CREATED, 0, 0, CREATED, CHG},
                {SHIM_PEV_START, 0, 0, STARTING, CHG},
                {SHIM_PEV_KILL, 137, -EAGAIN, STARTING, 0},
                {SHIM_PEV_START_FAILED, 255, 0, STOPPED, CHG},
                {SHIM_PEV_KILL, 137, -ENOENT, STOPPED, 0},
        };
        RUN(true, exec_failed, 255);
}

/* The process exits (or the VM dies) before Start returned: the exit is held, the state stays
 * STARTING (a Wait keeps waiting), and STARTED publishes the start, then the exit; after a
 * failed Start there is no event at all. */
static void test_exit_before_start_returns(void **state)
{
        static const struct step started[] = {
                {SHIM_PEV_CREATED, 0, 0, CREATED, CHG},
                {SHIM_PEV_START, 0, 0, STARTING, CHG},
                {SHIM_PEV_EXIT, 3, 0, STARTING, 0},
                {SHIM_PEV_EXIT, 255, 0, STARTING, 0}, /* the VM watcher, later: ignored */
                {SHIM_PEV_STARTED, 0, 0, STOPPED, PSTART | PEXIT | CHG},
                {SHIM_PEV_EXIT, 255, 0, STOPPED, 0},
                {SHIM_PEV_DELETE, 0, 0, DELETING, CHG},
        };
        RUN(false, started, 3);
        static const struct step failed[] = {
                {SHIM_PEV_CREATED, 0, 0, CREATED, CHG},
                {SHIM_PEV_START, 0, 0, STARTING, CHG},
                {SHIM_PEV_EXIT, 255, 0, STARTING, 0},
                {SHIM_PEV_START_FAILED, 255, 0, STOPPED, CHG},
        };
        RUN(false, failed, 255);
        RUN(true, failed, 255);
        /* The exit time is the exit's, not the Start's outcome's. */
        struct shim_proc_sm m;
        shim_proc_sm_init(&m, false);
        m.state = STARTING;
        assert_int_equal(shim_proc_fire(&m, SHIM_PEV_EXIT, 1, NULL, NULL), 0);
        assert_false(shim_proc_done(&m));
        struct timespec held = m.held_at;
        assert_int_equal(shim_proc_fire(&m, SHIM_PEV_STARTED, 0, NULL, NULL), 0);
        assert_true(shim_proc_done(&m));
        assert_int_equal(m.exited_at.tv_sec, held.tv_sec);
        assert_int_equal(m.exited_at.tv_nsec, held.tv_nsec);
}

/* Two Starts, two Pauses: the second of each is refused by the state the first put it in;
 * Delete during a Start waits; an exit during a Pause wins over its failure. */
static void test_concurrent_requests(void **state)
{
        static const struct step st[] = {
                {SHIM_PEV_CREATED, 0, 0, CREATED, CHG},
                {SHIM_PEV_START, 0, 0, STARTING, CHG},
                {SHIM_PEV_START, 0, -EBUSY, STARTING, 0},
                {SHIM_PEV_DELETE, 0, -EAGAIN, STARTING, 0},
                {SHIM_PEV_STARTED, 0, 0, RUNNING, PSTART | CHG},
                {SHIM_PEV_PAUSE, 0, 0, PAUSED, CHG},
                {SHIM_PEV_PAUSE, 0, -EBUSY, PAUSED, 0},
                {SHIM_PEV_PAUSE_FAILED, 0, 0, RUNNING, CHG},
                {SHIM_PEV_PAUSE, 0, 0, PAUSED, CHG},
                {SHIM_PEV_EXIT, 9, 0, STOPPED, PEXIT | CHG},
                {SHIM_PEV_PAUSE_FAILED, 0, 0, STOPPED, 0},
                {SHIM_PEV_RESUME, 0, -EBUSY, STOPPED, 0},
                {SHIM_PEV_DELETE, 0, 0, DELETING, CHG},
                {SHIM_PEV_DELETE, 0, -ENOENT, DELETING, 0},
        };
        RUN(false, st, 9);
}

/* Delete during Wait, with a real lock and condition variable as the shim uses them: a Wait
 * on a process never started ends when Delete removes it (status 0); a Wait on a running one
 * outlives a refused Delete and ends with the exit. */
struct waiter {
        pthread_mutex_t *lock;
        pthread_cond_t *cond;
        struct shim_proc_sm *m;
        uint32_t status;
        enum shim_proc_state seen;
};

static void *wait_main(void *arg)
{
        struct waiter *w = arg;
        pthread_mutex_lock(w->lock);
        while (!shim_proc_done(w->m))
                pthread_cond_wait(w->cond, w->lock);
        w->status = w->m->exit_status;
        w->seen = w->m->state;
        pthread_mutex_unlock(w->lock);
        return NULL;
}

static int fire_locked(struct waiter *w, enum shim_proc_event ev, uint32_t status)
{
        pthread_mutex_lock(w->lock);
        unsigned fx = 0;
        int r = shim_proc_fire(w->m, ev, status, &fx, NULL);
        if (fx & SHIM_PFX_CHANGED)
                pthread_cond_broadcast(w->cond);
        pthread_mutex_unlock(w->lock);
        return r;
}

static void test_delete_during_wait(void **state)
{
        pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
        struct shim_proc_sm m;
        shim_proc_sm_init(&m, false);
        m.state = CREATED;
        struct waiter w = {&lock, &cond, &m, 1234, CREATING};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, wait_main, &w), 0);
        assert_int_equal(fire_locked(&w, SHIM_PEV_DELETE, 0), 0);
        pthread_join(th, NULL);
        assert_int_equal(w.seen, DELETING);
        assert_int_equal(w.status, 0);

        shim_proc_sm_init(&m, false);
        m.state = RUNNING;
        w.seen = CREATING;
        assert_int_equal(pthread_create(&th, NULL, wait_main, &w), 0);
        assert_int_equal(fire_locked(&w, SHIM_PEV_DELETE, 0), -EBUSY);
        assert_int_equal(fire_locked(&w, SHIM_PEV_EXIT, 9), 0);
        pthread_join(th, NULL);
        assert_int_equal(w.seen, STOPPED);
        assert_int_equal(w.status, 9);
        assert_int_equal(fire_locked(&w, SHIM_PEV_DELETE, 0), 0);
}

/* Names for messages; out-of-range values are not crashes. */
static void test_names(void **state)
{
        assert_string_equal(shim_proc_state_name(SHIM_PROC_CREATING), "creating");
        assert_string_equal(shim_proc_state_name(SHIM_PROC_DELETING), "deleting");
        assert_string_equal(shim_proc_state_name(_SHIM_PROC_STATE_MAX), "invalid");
        struct shim_proc_sm m;
        shim_proc_sm_init(&m, false);
        assert_int_equal(shim_proc_fire(&m, _SHIM_PEV_MAX, 0, NULL, NULL), -EBUSY);
        m.state = _SHIM_PROC_STATE_MAX;
        assert_int_equal(shim_proc_fire(&m, SHIM_PEV_LOOKUP, 0, NULL, NULL), -EBUSY);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_every_transition),
                cmocka_unit_test(test_exit_recorded_once),
                cmocka_unit_test(test_kill_during_start),
                cmocka_unit_test(test_exit_before_start_returns),
                cmocka_unit_test(test_concurrent_requests),
                cmocka_unit_test(test_delete_during_wait),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
