/*
 * Promela model of uepoll's item-removal protocol (docs/locking.md, section 3).
 *
 * One epoll instance E, one watched file F, NITEMS items (F registered NITEMS times in E,
 * under different descriptors). Concurrent actors:
 *   del     - EPOLL_CTL_DEL of one item (path A); holds a pin on F and a reference on E's file
 *             (its two descriptor lookups) for its whole duration.
 *   close_e - drops E's descriptor; the last put of E's file runs path B (Instance::release)
 *             and then drops the file's share of instance_refs_ (Instance::destroy).
 *   close_f - drops F's descriptor; the last put of F runs path C (epoll_release_file) if the
 *             watcher list is not empty, then F's release() and destroy().
 *   add     - (ADD=1) EPOLL_CTL_ADD of F into E under one more descriptor (Instance::insert);
 *             holds a pin on F and a reference on E's file (its lookups) for its whole
 *             duration, links the new item under the watchers lock, and may unwind it (a
 *             later step of the insert failing).
 *   walker  - (WALKER=1) the nesting check's lockless walk of F's watcher list under RCU,
 *             reading each item and its w->instance (NestingCheck::count_paths/depth_above).
 *   reclaim - frees retired objects after an RCU grace period: only when no reader that was
 *             inside its read-side section at retire time is still inside it.
 * Whichever actor drops the last reference does the last put, so every order is explored.
 *
 * Build-time switches (spin -a -DNAME=VALUE):
 *   NITEMS      1 or 2 items registered before the actors start
 *   ADD         0/1: include the ADD actor (its item is number NITEMS)
 *   WALKER      0/1: include the RCU walker
 *   LEGACY      0/1: the pre-6.4 design, a global mutex around the removals of paths B and C
 *   MUT_B_NOPIN mutation: path B removes items without pinning F (must be caught)
 *   MUT_C_PUT_LOCKED  mutation: path C drops the instance reference before unlocking ctl_mutex_
 *   MUT_B_PUT_LOCKED  mutation: path B drops its pin on F while holding ctl_mutex_
 *   MUT_NO_RCU  mutation: items are freed without waiting for an RCU grace period
 *   MUT_A_UNPINNED  mutation: DEL drops its pin on F before removing the item
 *   MUT_ADD_UNPINNED  mutation: ADD drops its pin on F before inserting the item
 *
 * Every step is mapped to the C++ function it models in tests/model/README.md.
 */

#ifndef NITEMS
#define NITEMS 2
#endif
#ifndef WALKER
#define WALKER 1
#endif
#ifndef LEGACY
#define LEGACY 0
#endif
#ifndef ADD
#define ADD 0
#endif

#define NONE 255
#define NWORKERS (3 + WALKER + ADD)
#define NSLOTS (NITEMS + ADD)     /* every item that ever exists */

/* ---- F: the watched file ---- */
byte f_refs = 2 + ADD;      /* F's descriptor + del's lookup pin (+ add's) */
byte f_release_cnt = 0;     /* File::release() runs */
byte f_retire_cnt = 0;      /* File::destroy() runs */
bool f_retired = false;
bool f_freed = false;
bool f_gp = false;          /* a reader that must finish before F may be freed */
byte wl_owner = 0;          /* File::watchers_lock_ (0 = free, else holder's _pid + 1) */
byte head = NONE;           /* File::watchers_ */
byte file_next[NSLOTS];     /* Watch::file_next */
bool c_running = false;     /* path C has begun: from then on it alone writes F's list */

/* ---- E: the instance ---- */
byte e_refs = 2 + ADD;      /* E's file count: E's descriptor + del's lookup (+ add's) */
byte e_release_cnt = 0;     /* Instance::release() (path B) runs */
byte inst_refs = NITEMS + 1;/* Instance::instance_refs_: the file's share + one per item */
byte inst_retire_cnt = 0;
bool inst_retired = false;
bool inst_freed = false;
bool inst_gp = false;
byte ctl_owner = 0;         /* Instance::ctl_mutex_ */
byte g_owner = 0;           /* the legacy global mutex (GlobalMutexLock) */

/* ---- items ---- */
bool in_set[NSLOTS];        /* in E's interest set (hash) */
byte remove_cnt[NSLOTS];    /* Instance::remove(w) runs */
bool retired[NSLOTS];
bool freed[NSLOTS];
bool gp[NSLOTS];

/* ---- RCU ---- */
bool rcu_reader = false;    /* the walker is inside rcu::ReadGuard */

byte done = 0;

/* ------------------------------------------------------------------------------------------ */
/* Locks. Holders are recorded as _pid + 1. The mutex lives inside the instance and the      */
/* spinlock inside F, so touching either is an access to that object's memory.               */

inline lock_ctl() {
  assert(wl_owner != _pid + 1);        /* order: ctl_mutex before watchers lock */
  atomic { assert(!inst_freed); ctl_owner == 0 -> ctl_owner = _pid + 1 }
}
inline unlock_ctl() {
  atomic { assert(!inst_freed); assert(ctl_owner == _pid + 1); ctl_owner = 0 }
}
inline lock_wl() {
  atomic { assert(!f_freed); wl_owner == 0 -> wl_owner = _pid + 1 }
}
inline unlock_wl() {
  atomic { assert(!f_freed); assert(wl_owner == _pid + 1); wl_owner = 0 }
}
inline lock_global() {
  if
  :: LEGACY ->
     assert(ctl_owner != _pid + 1 && wl_owner != _pid + 1);  /* global is outermost */
     atomic { g_owner == 0 -> g_owner = _pid + 1 }
  :: else -> skip
  fi
}
inline unlock_global() {
  if
  :: LEGACY -> atomic { assert(g_owner == _pid + 1); g_owner = 0 }
  :: else -> skip
  fi
}

/* ------------------------------------------------------------------------------------------ */
/* Instance::put_instance: the last reference retires the instance through RCU.              */
inline put_instance() {
  atomic {
    assert(!inst_freed);
    assert(inst_refs > 0);
    inst_refs--;
    if
    :: inst_refs == 0 ->
       inst_retire_cnt++; inst_retired = true; inst_gp = rcu_reader
    :: else -> skip
    fi
  }
}

/* The common tail of the removals, Instance::forget(w): out of the interest set (and the ready
 * list, the count), then retired. */
inline forget_item(w) {
  atomic { assert(!freed[w]); in_set[w] = false }          /* hash_erase, ready list, count */
#ifdef MUT_NO_RCU
  atomic { retired[w] = true; gp[w] = false }              /* mutation: no grace period */
#else
  atomic { retired[w] = true; gp[w] = rcu_reader }         /* rcu::retire(w) */
#endif
}

inline start_remove(w) {
  atomic {
    assert(ctl_owner == _pid + 1);
    assert(!freed[w]);
    assert(in_set[w]);                 /* no double removal */
    remove_cnt[w]++
  }
  /* unhook(w): wait entries, no shared state modelled */
}

/* Instance::remove(w), paths A and B: under ctl_mutex_; unlinks w from F's watcher list under
 * the watchers lock (file_next of w stays intact). Path C must not be running: it writes the
 * list without that lock. */
inline remove_item(w) {
  start_remove(w);
  lock_wl();
  atomic {
    assert(!freed[w]);
    assert(!c_running);
    if
    :: head == w -> head = file_next[w]
    :: else ->
       pred = head;
       do
       :: pred == NONE -> assert(false)          /* w must be on the list */
       :: pred != NONE && file_next[pred] == w -> file_next[pred] = file_next[w]; break
       :: pred != NONE && file_next[pred] != w -> pred = file_next[pred]
       od
    fi
  }
  unlock_wl();
  forget_item(w)
}

/* Instance::remove_released(w), path C: w heads F's list, which no one else writes now, so no
 * lock is taken; no other writer may be inside the watchers lock. */
inline remove_released(w) {
  start_remove(w);
  atomic { assert(!freed[w]); assert(wl_owner == 0); assert(head == w); head = file_next[w] }
  forget_item(w)
}

/* Removal path C, epoll_release_file + Instance::release_watch: reads the head without the
 * watchers lock, then removes the head until the list is empty. */
inline release_file() {
  atomic { assert(wl_owner == 0); c_running = true; w = head }
  do
  :: w == NONE -> break
  :: else ->
     atomic { assert(!freed[w]); nx = file_next[w] }     /* ep = w->instance, its successor */
     lock_global();
     lock_ctl();
     remove_released(w);
#ifdef MUT_C_PUT_LOCKED
     put_instance();                            /* mutation: before unlocking */
     unlock_ctl();
     unlock_global();
#else
     unlock_ctl();
     unlock_global();
     put_instance();                            /* after unlocking */
#endif
     w = nx
  od
}

/* File::put of F; the last put is File::last_put: path C, release(), destroy(). */
inline put_f() {
  atomic {
    assert(!f_freed);
    assert(f_refs > 0);
    f_refs--;
    last = (f_refs == 0)
  }
  if
  :: last ->
     if
     :: atomic { head != NONE } -> release_file()   /* watchers_ non-empty */
     :: else -> skip
     fi;
     atomic { assert(!f_freed); f_release_cnt++ }   /* release() */
     atomic { f_retire_cnt++; f_retired = true; f_gp = rcu_reader }  /* destroy() */
  :: else -> skip
  fi
}

/* File::try_get of F: increment unless zero. */
inline try_get_f() {
  atomic {
    assert(!f_freed);
    if
    :: f_refs > 0 -> f_refs++; ok = true
    :: else -> ok = false
    fi
  }
}

/* Removal path B, Instance::release (one batch: NITEMS < 16), then Instance::destroy. */
inline release_instance() {
  atomic { e_release_cnt++ }
  lock_ctl();                         /* first pass: unhook every item */
  unlock_ctl();
  lock_global();
  lock_ctl();
  i = 0;
  do
  :: i < NSLOTS ->
     if
     :: atomic { in_set[i] } ->
        atomic { assert(!freed[i]) }   /* w->file */
#ifdef MUT_B_NOPIN
        ok = true;
#else
        try_get_f();
#endif
        if
#ifdef MUT_B_PUT_LOCKED
        :: ok -> remove_item(i); put_f(); put_instance()  /* mutation: pin dropped under the lock */
#else
        :: ok -> pinned[i] = true; remove_item(i)
#endif
        :: else -> skip                /* path C owns it */
        fi
     :: else -> skip
     fi;
     i++
  :: else -> break
  od;
  unlock_ctl();
  unlock_global();
  i = 0;
  do
  :: i < NSLOTS ->
     if
     :: pinned[i] ->
#ifndef MUT_B_NOPIN
        put_f();
#endif
        put_instance()                 /* never the last */
     :: else -> skip
     fi;
     i++
  :: else -> break
  od;
  put_instance()                       /* Instance::destroy: the file's share */
}

/* File::put of E's file; the last put runs E's release() (path B) and destroy(). E itself is
 * not watched, so its own path C does nothing. */
inline put_e() {
  atomic {
    assert(!inst_freed);
    assert(e_refs > 0);
    e_refs--;
    laste = (e_refs == 0)
  }
  if
  :: laste -> release_instance()
  :: else -> skip
  fi
}

/* ------------------------------------------------------------------------------------------ */
/* Path A: Instance::ctl(EPOLL_CTL_DEL) of F on an fd chosen nondeterministically (one of the
 * registered ones, or one never registered). */
proctype del() {
  byte k, w, pred, i, nx; bool removed = false, last, laste, ok;
  bool pinned[NSLOTS];
  if
  :: k = 0
  :: NITEMS > 1 -> k = 1
  :: k = NONE                      /* (F, an fd never registered): ENOENT */
  fi;
#ifdef MUT_A_UNPINNED
  put_f();                         /* mutation: the pin on F goes before the removal */
#endif
  lock_ctl();
  if
  :: atomic { k != NONE && in_set[k] } -> remove_item(k); removed = true   /* ctl_locked */
  :: else -> skip                                         /* ENOENT */
  fi;
  unlock_ctl();
  if
  :: removed -> put_instance()
  :: else -> skip
  fi;
  /* the two lookup references, in either order */
#ifdef MUT_A_UNPINNED
  put_e();
#else
  if
  :: put_f(); put_e()
  :: put_e(); put_f()
  fi;
#endif
  done++
}

#if ADD
/* Instance::insert under ctl_mutex_ (EPOLL_CTL_ADD of F on a new descriptor): links the item
 * at the head of F's list under the watchers lock, then hash_insert and get_instance; a later
 * step may fail and unwind with remove(). Path C must not have begun: the ADD's pin keeps F's
 * last put from happening before it lets go. */
proctype add() {
  byte w, pred, i, nx; bool last, laste, ok;
  bool pinned[NSLOTS];
#ifdef MUT_ADD_UNPINNED
  put_f();                         /* mutation: the pin on F goes before the insert */
#endif
  lock_ctl();
  lock_wl();
  atomic {
    assert(!f_freed);
    assert(!c_running);
    file_next[NITEMS] = head; head = NITEMS
  }
  unlock_wl();
  atomic { in_set[NITEMS] = true; inst_refs++ }   /* hash_insert, get_instance */
  if
  :: skip                                          /* inserted */
  :: remove_item(NITEMS); put_instance()           /* unwound (never the last reference) */
  fi;
  unlock_ctl();
#ifdef MUT_ADD_UNPINNED
  put_e();
#else
  if
  :: put_f(); put_e()
  :: put_e(); put_f()
  fi;
#endif
  done++
}
#endif

/* Closing E's last descriptor. */
proctype close_e() {
  byte w, pred, i, nx; bool last, laste, ok;
  bool pinned[NSLOTS];
  put_e();
  done++
}

/* Closing F's last descriptor. */
proctype close_f() {
  byte w, pred, nx; bool last;
  put_f();
  done++
}

#if WALKER
/* NestingCheck::count_paths on F: walks F's watcher list and reads w->instance's watcher list,
 * without locks, under rcu::ReadGuard. It reached F under RCU, so only while F was not yet
 * retired (a retired object is already unpublished). */
proctype walker() {
  byte w;
  atomic {
    if
    :: !f_retired -> rcu_reader = true
    :: else -> skip
    fi
  }
  if
  :: rcu_reader ->
     atomic { assert(!f_freed); w = head };
     do
     :: w == NONE -> break
     :: else ->
        atomic { assert(!freed[w]) };          /* w->instance */
        atomic { assert(!inst_freed) };        /* parent->watchers_ */
        atomic { assert(!freed[w]); w = file_next[w] }
     od;
     atomic {                                  /* end of the read-side section */
       rcu_reader = false; f_gp = false; inst_gp = false;
       w = 0;
       do
       :: w < NSLOTS -> gp[w] = false; w++
       :: else -> break
       od
     }
  :: else -> skip
  fi;
  done++
}
#endif

/* The RCU callbacks: free a retired object once its grace period has elapsed. */
proctype reclaim() {
end:
  do
  :: atomic { inst_retired && !inst_freed && !inst_gp -> inst_freed = true }
  :: atomic { f_retired && !f_freed && !f_gp -> f_freed = true }
  :: atomic { retired[0] && !freed[0] && !gp[0] -> freed[0] = true }
  :: atomic { NSLOTS > 1 && retired[1] && !freed[1] && !gp[1] -> freed[1] = true }
  :: atomic { NSLOTS > 2 && retired[2] && !freed[2] && !gp[2] -> freed[2] = true }
  od
}

/* Setup (F registered NITEMS times, newest first on F's list) and the final checks. */
init {
  byte i;
  atomic {
    i = 0;
    do
    :: i < NITEMS -> in_set[i] = true; file_next[i] = (i == 0 -> NONE : i - 1); i++
    :: else -> break
    od;
    head = NITEMS - 1;
    run del(); run close_e(); run close_f();
#if ADD
    run add();
#endif
#if WALKER
    run walker();
#endif
    run reclaim()
  }
  /* no lost removal; everything released exactly once */
  done == NWORKERS;
  atomic {
    i = 0;
    do
    :: i < NSLOTS -> assert(!in_set[i] && remove_cnt[i] == 1 && retired[i]); i++
    :: else -> break
    od;
    assert(head == NONE);
    assert(inst_refs == 0 && inst_retire_cnt == 1);
    assert(e_refs == 0 && e_release_cnt == 1);
    assert(f_refs == 0 && f_release_cnt == 1 && f_retire_cnt == 1);
    assert(ctl_owner == 0 && wl_owner == 0 && g_owner == 0)
  }
}
