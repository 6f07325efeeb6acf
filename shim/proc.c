/*
 * The process state machine (proc-internal.h): one table of what each event does in each state,
 * and the few steps where an exec differs from an init. Pure: no lock, no I/O; the caller
 * holds the shim's lock and acts on the effects.
 */
#include <errno.h>
#include <string.h>

#include "shim/proc-internal.h"

/* Why an event is refused, with the errno that the one errno -> status mapping turns into the
 * ttrpc code containerd expects (ENOENT: NotFound, EBUSY: FailedPrecondition). */
enum refusal {
        R_ILLEGAL,
        R_NOT_FOUND,
        R_BUSY, /* a Start is in flight: -EAGAIN, the caller waits and fires again */
        R_STARTED,
        R_NOT_RUNNING,
        R_NOT_PAUSED,
        R_NOT_CREATED,
        R_FINISHED,
        R_RUNNING,
};

static const struct {
        int errnum;
        const char *text;
} refusals[] = {
        [R_ILLEGAL] = {EBUSY, "not allowed"},
        [R_NOT_FOUND] = {ENOENT, "not found"},
        [R_BUSY] = {EAGAIN, "busy starting"},
        [R_STARTED] = {EBUSY, "process already started"},
        [R_NOT_RUNNING] = {EBUSY, "not running"},
        [R_NOT_PAUSED] = {EBUSY, "not paused"},
        [R_NOT_CREATED] = {EBUSY, "process not created"},
        [R_FINISHED] = {ENOENT, "process already finished"},
        [R_RUNNING] = {EBUSY, "still running; kill it first"},
};

/* Internal effects, above the ones the caller sees. */
enum {
        FX_RECORD = 1 << 8, /* record the exit: status and time */
        FX_HOLD = 1 << 9,   /* keep the exit until the Start's outcome */
        FX_PUBLIC = 0xff,
};

enum kind { K_UNSET, K_GO, K_STAY, K_NO };

struct step {
        unsigned char kind;
        unsigned char arg; /* K_GO: the next state; K_NO: the refusal */
        unsigned short fx;
};

/* clang-format off */
#define GO(st, f) {K_GO, SHIM_PROC_##st, (f) | SHIM_PFX_CHANGED}
#define STAY(f)   {K_STAY, 0, (f)}
#define NO(r)     {K_NO, R_##r, 0}

#define P_START SHIM_PFX_PUBLISH_START
#define P_EXIT  SHIM_PFX_PUBLISH_EXIT
#define SIGNAL  SHIM_PFX_SIGNAL

/* What each event does to an init process, by state. An unset entry is an illegal event. */
static const struct step steps[_SHIM_PROC_STATE_MAX][_SHIM_PEV_MAX] = {
        [SHIM_PROC_CREATING] = {
                [SHIM_PEV_LOOKUP] = NO(NOT_FOUND),
                [SHIM_PEV_CREATED] = GO(CREATED, 0),
                [SHIM_PEV_START] = NO(NOT_FOUND),
                [SHIM_PEV_PAUSE] = NO(NOT_FOUND),
                [SHIM_PEV_RESUME] = NO(NOT_FOUND),
                [SHIM_PEV_KILL] = NO(NOT_FOUND),
                [SHIM_PEV_EXEC] = NO(NOT_FOUND),
                [SHIM_PEV_EXIT] = STAY(0), /* the VM died: Create fails on its own */
                [SHIM_PEV_DELETE] = NO(NOT_FOUND),
        },
        [SHIM_PROC_CREATED] = {
                [SHIM_PEV_LOOKUP] = STAY(0),
                [SHIM_PEV_START] = GO(STARTING, 0),
                [SHIM_PEV_PAUSE] = NO(NOT_RUNNING),
                [SHIM_PEV_RESUME] = NO(NOT_PAUSED),
                /* Nothing runs yet: the kill is the exit (no event: no start was published). */
                [SHIM_PEV_KILL] = GO(STOPPED, FX_RECORD),
                [SHIM_PEV_EXEC] = NO(NOT_RUNNING),
                [SHIM_PEV_EXIT] = GO(STOPPED, FX_RECORD),
                [SHIM_PEV_DELETE] = GO(DELETING, 0),
        },
        [SHIM_PROC_STARTING] = {
                [SHIM_PEV_LOOKUP] = STAY(0),
                [SHIM_PEV_START] = NO(STARTED),
                [SHIM_PEV_STARTED] = GO(RUNNING, P_START),
                [SHIM_PEV_START_FAILED] = GO(CREATED, 0),
                [SHIM_PEV_PAUSE] = NO(NOT_RUNNING),
                [SHIM_PEV_RESUME] = NO(NOT_PAUSED),
                /* Kill and Delete wait for the Start's outcome (as the runc shim's process
                 * lock makes them). */
                [SHIM_PEV_KILL] = NO(BUSY),
                [SHIM_PEV_EXEC] = NO(NOT_RUNNING),
                /* An exit before Start returned: held, published after the start. */
                [SHIM_PEV_EXIT] = STAY(FX_HOLD),
                [SHIM_PEV_DELETE] = NO(BUSY),
        },
        [SHIM_PROC_RUNNING] = {
                [SHIM_PEV_LOOKUP] = STAY(0),
                [SHIM_PEV_START] = NO(STARTED),
                [SHIM_PEV_PAUSE] = GO(PAUSED, 0),
                [SHIM_PEV_PAUSE_FAILED] = STAY(0),
                [SHIM_PEV_RESUME] = NO(NOT_PAUSED),
                [SHIM_PEV_RESUME_FAILED] = GO(PAUSED, 0),
                [SHIM_PEV_KILL] = STAY(SIGNAL),
                [SHIM_PEV_EXEC] = STAY(0),
                [SHIM_PEV_EXIT] = GO(STOPPED, FX_RECORD | P_EXIT),
                [SHIM_PEV_DELETE] = NO(RUNNING),
        },
        [SHIM_PROC_PAUSED] = {
                [SHIM_PEV_LOOKUP] = STAY(0),
                [SHIM_PEV_START] = NO(STARTED),
                [SHIM_PEV_PAUSE] = NO(NOT_RUNNING),
                [SHIM_PEV_PAUSE_FAILED] = GO(RUNNING, 0),
                [SHIM_PEV_RESUME] = GO(RUNNING, 0),
                [SHIM_PEV_RESUME_FAILED] = STAY(0),
                [SHIM_PEV_KILL] = STAY(SIGNAL),
                [SHIM_PEV_EXEC] = STAY(0),
                [SHIM_PEV_EXIT] = GO(STOPPED, FX_RECORD | P_EXIT),
                [SHIM_PEV_DELETE] = NO(RUNNING),
        },
        [SHIM_PROC_STOPPED] = {
                [SHIM_PEV_LOOKUP] = STAY(0),
                [SHIM_PEV_START] = NO(STARTED),
                [SHIM_PEV_PAUSE] = NO(NOT_RUNNING),
                [SHIM_PEV_PAUSE_FAILED] = STAY(0),
                [SHIM_PEV_RESUME] = NO(NOT_PAUSED),
                [SHIM_PEV_RESUME_FAILED] = STAY(0),
                [SHIM_PEV_KILL] = NO(FINISHED),
                [SHIM_PEV_EXEC] = NO(NOT_RUNNING),
                [SHIM_PEV_EXIT] = STAY(0), /* a second report of the same exit */
                [SHIM_PEV_DELETE] = GO(DELETING, 0),
        },
        [SHIM_PROC_DELETING] = {
                [SHIM_PEV_LOOKUP] = STAY(0),
                [SHIM_PEV_START] = NO(NOT_FOUND),
                [SHIM_PEV_PAUSE] = NO(NOT_FOUND),
                [SHIM_PEV_PAUSE_FAILED] = STAY(0),
                [SHIM_PEV_RESUME] = NO(NOT_FOUND),
                [SHIM_PEV_RESUME_FAILED] = STAY(0),
                [SHIM_PEV_KILL] = NO(FINISHED),
                [SHIM_PEV_EXEC] = NO(NOT_FOUND),
                [SHIM_PEV_EXIT] = STAY(0),
                [SHIM_PEV_DELETE] = NO(NOT_FOUND),
        },
};

/*
 * Where an exec differs. Kill of an exec never started is FailedPrecondition, as the runc
 * shim's: containerd's WithProcessKill (CRI's exec cleanup) then deletes it at once, where
 * NotFound would make it wait for an exit that never comes. An exec the agent did not start
 * (its policy, a missing binary) never runs: it exits with the given status (255), without an
 * event, so that a Wait containerd made before Start ends.
 */
static const struct step exec_steps[_SHIM_PROC_STATE_MAX][_SHIM_PEV_MAX] = {
        [SHIM_PROC_CREATED][SHIM_PEV_KILL] = NO(NOT_CREATED),
        [SHIM_PROC_STARTING][SHIM_PEV_START_FAILED] = GO(STOPPED, FX_RECORD),
};
/* clang-format on */

/* The state each event leads to, for the message of a refusal (-1: none, a check only). */
static const signed char ev_target[_SHIM_PEV_MAX] = {
        [SHIM_PEV_LOOKUP] = -1,
        [SHIM_PEV_CREATED] = SHIM_PROC_CREATED,
        [SHIM_PEV_START] = SHIM_PROC_STARTING,
        [SHIM_PEV_STARTED] = SHIM_PROC_RUNNING,
        [SHIM_PEV_START_FAILED] = SHIM_PROC_CREATED,
        [SHIM_PEV_PAUSE] = SHIM_PROC_PAUSED,
        [SHIM_PEV_PAUSE_FAILED] = SHIM_PROC_RUNNING,
        [SHIM_PEV_RESUME] = SHIM_PROC_RUNNING,
        [SHIM_PEV_RESUME_FAILED] = SHIM_PROC_PAUSED,
        [SHIM_PEV_KILL] = SHIM_PROC_STOPPED,
        [SHIM_PEV_EXEC] = -1,
        [SHIM_PEV_EXIT] = SHIM_PROC_STOPPED,
        [SHIM_PEV_DELETE] = SHIM_PROC_DELETING,
};

const char *shim_proc_state_name(enum shim_proc_state s)
{
        static const char *const names[_SHIM_PROC_STATE_MAX] = {
                [SHIM_PROC_CREATING] = "creating", [SHIM_PROC_CREATED] = "created",
                [SHIM_PROC_STARTING] = "starting", [SHIM_PROC_RUNNING] = "running",
                [SHIM_PROC_PAUSED] = "paused",     [SHIM_PROC_STOPPED] = "stopped",
                [SHIM_PROC_DELETING] = "deleting",
        };
        return (unsigned)s < _SHIM_PROC_STATE_MAX ? names[s] : "invalid";
}

void shim_proc_sm_init(struct shim_proc_sm *m, bool exec)
{
        *m = (struct shim_proc_sm){.state = SHIM_PROC_CREATING, .exec = exec};
}

bool shim_proc_done(const struct shim_proc_sm *m)
{
        return m->state == SHIM_PROC_STOPPED || m->state == SHIM_PROC_DELETING;
}

static struct step lookup(const struct shim_proc_sm *m, enum shim_proc_event ev)
{
        if ((unsigned)m->state >= _SHIM_PROC_STATE_MAX || (unsigned)ev >= _SHIM_PEV_MAX)
                return (struct step)NO(ILLEGAL);
        struct step s = m->exec ? exec_steps[m->state][ev] : (struct step){0};
        if (s.kind == K_UNSET)
                s = steps[m->state][ev];
        if (s.kind == K_UNSET)
                s = (struct step)NO(ILLEGAL);
        /* Leaving STARTING with an exit held: the process ends now, with that exit, and its
         * exit event follows the start event (STARTED) or there is none (START_FAILED). */
        if (m->state == SHIM_PROC_STARTING && m->exit_held &&
            (ev == SHIM_PEV_STARTED || ev == SHIM_PEV_START_FAILED))
                s = (struct step)GO(STOPPED, (s.fx & P_START) ? P_START | P_EXIT : 0);
        return s;
}

static int refuse(const struct shim_proc_sm *m, enum shim_proc_event ev, const struct step *s,
                  struct cc_error **err)
{
        int errnum = refusals[s->arg].errnum;
        if (errnum == EAGAIN)
                return -EAGAIN;
        const char *from = shim_proc_state_name(m->state);
        if ((unsigned)ev >= _SHIM_PEV_MAX || ev_target[ev] < 0)
                return cc_error_set(err, errnum, "%s (%s)", refusals[s->arg].text, from);
        return cc_error_set(err, errnum, "%s (%s -> %s)", refusals[s->arg].text, from,
                            shim_proc_state_name(ev_target[ev]));
}

int shim_proc_check(const struct shim_proc_sm *m, enum shim_proc_event ev, struct cc_error **err)
{
        struct step s = lookup(m, ev);
        return s.kind == K_NO ? refuse(m, ev, &s, err) : 0;
}

int shim_proc_fire(struct shim_proc_sm *m, enum shim_proc_event ev, uint32_t status,
                   unsigned *ret_effects, struct cc_error **err)
{
        struct step s = lookup(m, ev);
        if (ret_effects)
                *ret_effects = 0;
        if (s.kind == K_NO)
                return refuse(m, ev, &s, err);
        bool leaving_held = m->exit_held && s.kind == K_GO && s.arg == SHIM_PROC_STOPPED;
        if (leaving_held) {
                m->exit_status = m->held_status;
                m->exited_at = m->held_at;
                m->exit_held = false;
        } else if (s.fx & FX_RECORD) {
                m->exit_status = status;
                clock_gettime(CLOCK_REALTIME, &m->exited_at);
        }
        if ((s.fx & FX_HOLD) && !m->exit_held) {
                m->exit_held = true;
                m->held_status = status;
                clock_gettime(CLOCK_REALTIME, &m->held_at);
        }
        if (s.kind == K_GO)
                m->state = s.arg;
        if (ret_effects)
                *ret_effects = s.fx & FX_PUBLIC;
        return 0;
}
