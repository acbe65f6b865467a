/* spinning.pml: the spinning/parking handshake ("delicate dance") between
 * whoever submits a G (runqput or globrunqput, then wakep) and an M that
 * finds nothing, idles its P, drops nmspinning, re-checks the queues, then
 * parks; and sysmon's rescue of work queued behind a long slice.
 * Property: no lost wakeup. Once nothing can move (every M parked, G0
 * computing forever), every G submitted has run.
 * Mirrors goro's src/runtime/proc.cpp and idle.cpp (newproc_commit,
 * goready, wakep, startm, stopm, mPark, findRunnable, queuedWorkNoP,
 * resetspinning, pidleput, pidleget, globrunqget, becomeSpinning) and
 * sysmon.cpp (retake), which follow Go 1.19's proc.go ("Worker thread
 * parking/unparking") but close its gaps differently from Go 1.21: see
 * "Sysmon's rescue" below.
 *
 * The system: 2 Ps and Ms M0..M3 (M4 with MAXM=5). M0 holds P0 and runs
 * G0, which starts NGO goroutines (newproc_commit, as goready:
 * runqput(pp, g, next=true), then wakep) and then either computes forever
 * without yielding (the case the handshake exists for: no one else looks
 * at P0's queue) or parks, so that M0 enters schedule. FOREIGN plain
 * threads each start one goroutine (newproc_commit with no P: globrunqput
 * under sched.lock, foreign_put_fence, wakep). M1 starts holding P1 and
 * spinning, holding P1 and not spinning (its G just ended), or parked with
 * P1 idle; M2 starts parked, or (TAKER_M) takes an idle P without spinning
 * whenever there is one, as exitsyscall and pollTimers do; the rest are
 * Ms that newm creates when startm finds no idle M. Every G but G0 runs to
 * its end. A Sysmon process wakes a spinner while G0 computes with work
 * queued behind it (retake), unless -DNO_SYSMON.
 *
 * Configurations (ctest checks the first four, and the first two again
 * with -DNO_SYSMON: the dance alone must do there):
 *   -DNGO=1 -DFOREIGN=0 (the default)  the dance on the per-P rings
 *   -DNGO=0 -DFOREIGN=1                the dance on the global queue
 *   -DNGO=2 -DFOREIGN=0 -DMAXM=5       the transient spinner (below)
 *   -DNGO=1 -DFOREIGN=0 -DTAKER_M -DMAXM=5
 *                                      a P taken without spinning (below)
 *   -DNGO=1 -DFOREIGN=1 -DMAXM=5       both queues: too big to check
 *     exhaustively (an -DHC4 search of 88M states did not fit in 4 GB).
 *
 * Atomicity. Every atomic in the handshake is seq_cst in goro (the ring's
 * tail store and runnext CAS, runqempty's loads, npidle, nmspinning,
 * idlepMask, foreign_put_fence's RMW), so the model is sequentially
 * consistent: each load, store or RMW of data that lock-free code reads
 * (rq, npidle, nmspinning, idlep, runqsize, the notes) is a step of its
 * own. Taking or releasing sched.lock, and touching data only read under
 * it (the idle P and M lists), commute with every lock-free step, so they
 * are folded into the neighbouring step. The unlocked relaxed look at
 * runqsize in findRunnable is a hint: it is a free choice here.
 *
 * Abstractions. A P's local queue (ring + runnext) is a count: runq.pml
 * models its insides. A thief takes one G: with at most 2 Gs on a P the
 * ring holds at most 1, and runqgrab takes n - n/2 of it, or runnext when
 * the ring is empty. stealWork's four passes are one pass that may take
 * runnext: the earlier passes differ only in skipping runnext, so any
 * outcome of theirs is an outcome of this pass. Not modelled: timers and
 * pollTimers' sleep, the netpoller, GC stop, sched.exiting, the
 * schedtick%61 look at the global queue, locked Ms, system calls
 * (handoffp, which re-checks and wakes as a non-spinning M in
 * findRunnable does), sysmon's timing (it acts whenever G0 computes).
 *
 * Sysmon's rescue. In Go 1.19 only a spinning M re-checks after idling
 * its P; a non-spinning one idles it and parks, trusting the spinner it
 * saw in nmspinning. Two ways that spinner fails it: (1) the transient
 * spinner: wakep raises nmspinning from 0 to 1 before startm looks for an
 * idle P, and finding none startm lowers it again, re-checking nothing;
 * (2) a spinner that has already re-checked and not yet dropped
 * nmspinning, while the non-spinning M holds a P it took without spinning
 * (TAKER_M), so that the submitter's wakep sees npidle == 0. Either way a
 * G queued on P0 is run by no one while G0 computes. Go 1.21 closes both
 * with sched.needspinning and a wakep that always takes sched.lock when
 * nobody spins, and its asynchronous preemption bounds the rest. goro
 * keeps Go 1.19's dance (an earlier goro had every M that idles a P look
 * at the rings again: it cost timer_lateness 12-18 % of p50, those Ms
 * spinning into the runnext back-off) and has sysmon wake a spinner while
 * a P's slice is over with work queued behind it (retake): no G is lost,
 * and its wait is bounded by a slice. The model checks both configurations
 * with no error, and with errors without the Sysmon process
 * (-DNO_SYSMON).
 *
 * Mutants (pan must report an error for each):
 *   -DMUTANT -DNO_SYSMON  no re-check of the per-P rings by a spinner, and
 *                     no sysmon: G1 is stranded (the dance alone covers
 *                     -DNGO=1 and -DNGO=0 -DFOREIGN=1: checked with
 *                     -DNO_SYSMON, with no error).
 *   -DMUTANT_GLOBAL   (with -DNGO=0 -DFOREIGN=1) no re-check of the
 *                     global queue: the G is stranded.
 *   -DNO_SYSMON       (with -DNGO=2 -DMAXM=5, and with -DTAKER_M -DMAXM=5)
 *                     no sysmon rescue: G1 or G2 is stranded.
 */

#ifndef NGO
#define NGO 1         /* Gs that G0 starts */
#endif
#ifndef FOREIGN
#define FOREIGN 0     /* Gs that plain threads start (0 or 1) */
#endif
#ifndef MAXM
#define MAXM 4        /* Ms: M0..M2 and one that newm starts */
#endif

#define NP 2          /* Ps */
#define NONE 255      /* a nil P or M */
#define NG (NGO + FOREIGN)

byte rq[NP];          /* G count in each P's local run queue */
byte runqsize;        /* sched.runqsize: the global queue (written under sched.lock) */
bit idlep[NP];        /* idlepMask */
byte npidle;          /* sched.npidle */
byte nmspinning;      /* sched.nmspinning */
bit schedlock;        /* sched.lock */
byte pidle[NP];       /* sched.pidle: a LIFO list (under sched.lock) */
byte npl;
byte midle[MAXM];     /* sched.midle: a LIFO list (under sched.lock) */
byte nmidle;
byte nm;              /* Ms allocated (sched.mnext) */
bit note[MAXM];       /* m.park: the note an M sleeps on in stopm */
bit born[MAXM];       /* newm has started the M's thread */
byte nextp[MAXM];     /* m.nextp: the P that startm hands over */
bit spinning[MAXM];   /* m.spinning */
bit newspin[MAXM];    /* m.mstartfn is mspinning */
byte ran;             /* Gs other than G0 that ran (a ghost counter) */
bit computing;        /* G0 computes for ever: its slice is over for sysmon */

/* startm(nullptr, spin): hand an idle P to an idle M, or to a new one. The
 * caller raised nmspinning if spin; with no idle P it is lowered again. */
inline startm(spin) {
  atomic {
    schedlock == 0 -> schedlock = 1;
    if   /* pidleget */
    :: npl > 0 -> npl--; sp = pidle[npl]; pidle[npl] = 0; idlep[sp] = 0
    :: else -> sp = NONE
    fi
  };
  if
  :: sp == NONE ->
    atomic {
      schedlock = 0;
      assert(!spin || nmspinning > 0);   /* "startm: negative nmspinning" */
      nmspinning = nmspinning - spin
    }
  :: else ->
    atomic {
      npidle--;   /* pidleget */
      if
      :: nmidle > 0 ->   /* mget */
        nmidle--; nmp = midle[nmidle]; midle[nmidle] = 0; fresh = 0
      :: else ->         /* allocm_locked */
        assert(nm < MAXM);   /* the model's bound: raise MAXM */
        nmp = nm; nm++; fresh = 1
      fi;
      schedlock = 0
    };
    if
    :: !fresh ->
      atomic {
        assert(!spinning[nmp]);           /* setMstatus(nmp, _Midle, ...) */
        assert(nextp[nmp] == NONE);       /* "startm: m has p" */
        assert(!(spin && rq[sp] != 0));   /* "startm: p has runnable gs" */
        spinning[nmp] = spin;
        nextp[nmp] = sp;
        note[nmp] = 1;                    /* notewakeup */
        sp = 0; nmp = 0
      }
    :: fresh ->
      atomic {   /* newm: the thread runs mspinning if spin, then acquirep(nextp) */
        nextp[nmp] = sp;
        newspin[nmp] = spin;
        born[nmp] = 1;
        sp = 0; nmp = 0; fresh = 0
      }
    fi
  fi
}

/* wakep: one more spinning M, if a P is idle and no M is spinning. */
inline wakep() {
  if
  :: npidle == 0
  :: else ->
    if
    :: nmspinning != 0
    :: else ->
      if
      :: atomic { nmspinning == 0 -> nmspinning = 1 } -> startm(1)
      :: atomic { nmspinning != 0 -> skip }   /* the CAS failed */
      fi
    fi
  fi
}

/* lock; globrunqget(pp, 0): a fair share of the global queue. got is set
 * when a G was taken to run; the rest go on pp's ring (runqput, no wakep).
 * The lock stays held, unless nothing was taken and !keep. */
inline lock_globrunqget(keep) {
  atomic {
    schedlock == 0 -> schedlock = 1;
    n = runqsize / NP + 1;
    if
    :: n > runqsize -> n = runqsize
    :: else
    fi;
    got = n > 0;
    if
    :: !got && !keep -> schedlock = 0
    :: else
    fi
  };
  if
  :: got ->
    runqsize = runqsize - n;
    if
    :: n > 1 -> rq[pp] = rq[pp] + n - 1
    :: else
    fi
  :: else
  fi
}

/* How an M starts. */
#define RUNNING 0   /* holds p0: enters schedule */
#define PARKED 1    /* on the idle M list, asleep in stopm */
#define UNBORN 2    /* no thread yet: newm starts it */
#define RUNS_G0 3   /* M0, running G0 on P0 */
#define TAKER 4     /* takes an idle P without spinning (exitsyscall, pollTimers) */

/* An M: schedule and findRunnable. me is its index, p0 its P (NONE if
 * none); init sets m.spinning. */
proctype M(byte me; byte p0; byte start)
{
  byte pp = p0;   /* mp->p */
  byte p2, sp, nmp, n, t;
  bit got, fresh, was;

  if
  :: start == RUNNING
  :: start == PARKED -> goto end_park
  :: start == UNBORN ->
end_unborn:
    atomic {   /* mstart1: mspinning, acquirep(nextp) */
      born[me] == 1 ->
      pp = nextp[me]; nextp[me] = NONE; spinning[me] = newspin[me]
    }
  :: start == TAKER ->
end_taker:
    atomic {   /* lock; pidleget; unlock: then findRunnable, not spinning */
      schedlock == 0 && npl > 0 ->
      npl--; pp = pidle[npl]; pidle[npl] = 0; idlep[pp] = 0; npidle--
    }
  :: start == RUNS_G0 ->
    do   /* go G1...: newproc_commit */
    :: t < NGO ->
      rq[pp]++;   /* runqput(pp, newg, next=true): a seq_cst CAS on runnext */
      wakep();
      t++
    :: else -> t = 0; break
    od;
    if
    :: true ->
      computing = 1;
end_g0:
      false     /* G0 never yields: only another M can run G1 */
    :: true     /* G0 parks: M0 enters schedule */
    fi
  fi;

sched:
  /* schedule: "schedule: spinning with local work" */
  assert(!(spinning[me] && rq[pp] != 0));

top:
  /* findRunnable: the local run queue (runqget, owner) */
  if
  :: atomic { rq[pp] > 0 -> rq[pp]-- } -> goto found
  :: else
  fi;

#if FOREIGN
  /* the global run queue, if the unlocked look at runqsize says so */
  if
  :: true ->
    lock_globrunqget(0);
    if
    :: got -> schedlock = 0; goto found
    :: else
    fi
  :: true
  fi;
#endif

  /* Spinning Ms steal; another M starts spinning only while
   * 2 * nmspinning < gomaxprocs - npidle: two loads, in an order C++
   * leaves open. */
  if
  :: spinning[me]
  :: else ->
    if
    :: t = nmspinning;
      if
      :: 2 * t < NP - npidle -> t = 1
      :: else -> t = 0
      fi
    :: t = npidle;
      if
      :: 2 * nmspinning < NP - t -> t = 1
      :: else -> t = 0
      fi
    fi;
    if
    :: t == 1 -> atomic { spinning[me] = 1; nmspinning++; t = 0 }
    :: else -> goto block
    fi
  fi;

  /* stealWork: every other P that idlepMask does not mark idle */
  for (p2 : 0 .. NP - 1) {
    if
    :: p2 != pp && !idlep[p2] ->
      if
      :: atomic { rq[p2] > 0 -> rq[p2]-- } -> goto found   /* runqsteal */
      :: else
      fi
    :: else
    fi
  };
  p2 = 0;

block:
  /* Return P and block: the global queue once more, under the lock. */
#if FOREIGN
  lock_globrunqget(1);
  if
  :: got -> schedlock = 0; goto found
  :: else
  fi;
#else
  atomic { schedlock == 0 -> schedlock = 1 };
#endif
  atomic {   /* releasep; pidleput */
    assert(rq[pp] == 0);   /* "pidleput: P has non-empty run queue" */
    idlep[pp] = 1; pidle[npl] = pp; npl++
  };
  atomic { npidle++; pp = NONE; schedlock = 0 };

  /* Delicate dance: a spinning M drops nmspinning (a seq_cst RMW), then
   * looks again at every ring and at the global queue. An M that was not
   * spinning looks again at the global queue only (a plain thread's G):
   * a G queued on a running P that no spinner will look at is left to
   * sysmon (below). */
  if
  :: spinning[me] ->
    atomic {
      spinning[me] = 0;
      assert(nmspinning > 0);   /* "findrunnable: negative nmspinning" */
      nmspinning--;
      was = 1
    }
  :: else
  fi;
  if
  :: was ->
    was = 0;
#ifndef MUTANT
    /* checkRunqsNoP: every P that idlepMask, read now, does not mark idle
     * (Go reads a snapshot taken before releasep) */
    for (p2 : 0 .. NP - 1) {
      if
      :: !idlep[p2] ->
        if
        :: rq[p2] != 0 ->   /* !runqempty */
          atomic {
            schedlock == 0 -> schedlock = 1;
            if   /* pidleget */
            :: npl > 0 -> npl--; sp = pidle[npl]; pidle[npl] = 0; idlep[sp] = 0
            :: else -> sp = NONE
            fi
          };
          if
          :: sp == NONE -> schedlock = 0; break   /* every P busy: their Ms look */
          :: else ->
            atomic { npidle--; schedlock = 0 };
            atomic { pp = sp; sp = 0; p2 = 0; spinning[me] = 1; nmspinning++ };
            goto top
          fi
        :: else
        fi
      :: else
      fi
    };
    p2 = 0;
#endif
    skip
  :: else
  fi;
#if FOREIGN && !defined(MUTANT_GLOBAL)
  /* ...and the global queue (goro's addition; a seq_cst load), whether
   * it was spinning or not */
  if
  :: runqsize != 0 ->
    atomic {
      schedlock == 0 -> schedlock = 1;
      if   /* pidleget */
      :: npl > 0 -> npl--; sp = pidle[npl]; pidle[npl] = 0; idlep[sp] = 0
      :: else -> sp = NONE
      fi
    };
    if
    :: sp == NONE -> schedlock = 0
    :: else ->
      atomic { npidle--; schedlock = 0 };
      atomic { pp = sp; sp = 0; spinning[me] = 1; nmspinning++ };
      goto top
    fi
  :: else
  fi;
#endif

  /* stopm: mput under the lock, then mPark: sleep, take nextp */
  atomic { schedlock == 0 -> schedlock = 1; midle[nmidle] = me; nmidle++; schedlock = 0 };
end_park:
  atomic { note[me] == 1 -> note[me] = 0; pp = nextp[me]; nextp[me] = NONE };
  goto top;

found:
  /* schedule: a spinning M that found work wakes the next (resetspinning) */
  if
  :: spinning[me] ->
    atomic {
      spinning[me] = 0;
      assert(nmspinning > 0);   /* "resetspinning: negative nmspinning" */
      nmspinning--
    };
    wakep()
  :: else
  fi;
  /* execute: the G runs to its end */
  d_step { ran++; assert(ran <= NG); p2 = 0; n = 0; got = 0 };
  goto sched
}

/* A plain thread starts a goroutine (or readies one: goready) with no P:
 * newproc_commit's path for a thread that is not an M. */
proctype Foreign()
{
  byte sp, nmp;
  bit fresh;

  atomic { schedlock == 0 -> schedlock = 1; runqsize++; schedlock = 0 };   /* globrunqput */
  /* foreign_put_fence: a seq_cst RMW, a no-op in a sequentially consistent model */
  wakep()
}

init {
  byte i;

  atomic {
    for (i : 0 .. MAXM - 1) {
      nextp[i] = NONE
    };
    nm = 3;
    run M(0, 0, RUNS_G0);
    if
    :: spinning[1] = 1; nmspinning = 1;
       run M(1, 1, RUNNING)   /* M1 spins with P1 */
    :: run M(1, 1, RUNNING)   /* M1 holds P1; its G just ended */
    :: idlep[1] = 1; pidle[0] = 1; npl = 1; npidle = 1;
       midle[nmidle] = 1; nmidle++;
       run M(1, NONE, PARKED)   /* M1 parked, P1 idle */
    fi;
#ifdef TAKER_M
    run M(2, NONE, TAKER);
#else
    midle[nmidle] = 2; nmidle++;
    run M(2, NONE, PARKED);
#endif
    for (i : 3 .. MAXM - 1) {
      run M(i, NONE, UNBORN)
    };
#if FOREIGN
    run Foreign();
#endif
    i = 0
  }
}

/* sysmon's retake: while G0's slice is over (it computes for ever) and
 * work waits behind it, or on the global queue, wake a spinning M if a P is
 * idle and none spins: every tick, so in the model whenever that holds. */
#ifndef NO_SYSMON
active proctype Sysmon()
{
  byte sp, nmp;
  bit fresh;
end_sysmon:
  do
  :: atomic { computing && (rq[0] > 0 || runqsize > 0) && npidle > 0 && nmspinning == 0 -> skip };
     wakep()
  od
}
#endif

/* Quiescence: nothing else can move. A G that has not run now is lost. */
active proctype Quiescence()
{
  timeout -> assert(ran == NG)
}
