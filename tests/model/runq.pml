/* runq.pml: a P's local run queue on a ring of 4 slots: the owner's
 * runqput (runnext and the runqputslow spill included) and runqget,
 * against two thieves in runqsteal/runqgrab.
 * Property: every G put is taken exactly once (by the owner, by a thief,
 * or by the spill to the global queue), and nothing else is ever taken.
 * Mirrors goro's src/runtime/runq.hpp (runqput, runqputslow, runqget,
 * runqgrab, runqsteal) and Go's proc.go functions of the same names.
 *
 * The owner puts G1..G6, each into runnext or onto the ring (a free
 * choice), takes one now and then, and at the end takes until runqget
 * finds nothing. Six Gs fill the ring and runnext and spill, and the ring's
 * indices wrap; every statement of the model is reached. Each thief steals
 * as often as it likes, with stealRunNextG (stealWork's last pass; without
 * it an attempt on an empty ring changes nothing, as if the thief had not
 * tried). A thief takes every G it grabbed: where they land (the thief's
 * own ring) is another queue, modelled no further.
 *
 * The model is sequentially consistent: it checks the protocol (index
 * arithmetic, the CAS on head that commits every take, runnext, the ring
 * and runnext changing under a thief), not the memory orders, which
 * runq.hpp argues access by access and the TSan stress tests exercise.
 * Each store and CAS is a step of its own. Loads are folded into the step
 * that uses them where that changes no outcome: a load whose value only
 * matters if a later CAS succeeds, when the CAS fails had the value changed
 * (the slot loads, see commit_head; a thief's loads of head and tail:
 * head only grows, so if it moved between them the CAS fails, and if it
 * did not the pair is what one step at the second load reads; an empty
 * ring, tail == h, means it did not, as head <= tail), and the load before
 * a CAS of runnext: a failed CAS is followed by a retry or the ring, and
 * no G is put twice, so there is no ABA. With consistent loads,
 * runqgrab's retry for n > N/2 is never taken. head and tail are uint32 in
 * goro; here they stay far from wrapping. A spurious failure of runqget's
 * compare_exchange_weak is a retry, as a real one is.
 *
 * Mutants (pan must report an error for each):
 *   -DMUTANT          runqgrab stores head = h + n instead of a CAS: a
 *                     consumer takes a G another one took (an emptied
 *                     slot here: "assertion violated (tk!=0)").
 *   -DMUTANT_PUBLISH  runqput stores tail before it writes the slot: a
 *                     thief takes the slot before the G is in it.
 */

#define N 4           /* ring slots */
#ifndef NG
#define NG 6          /* Gs the owner puts */
#endif

byte head;            /* RunQueue::head: moved by CAS */
byte tail;            /* RunQueue::tail: stored by the owner only */
byte ring[N];         /* G ids; 0 is nil */
byte runnext;
byte taken[NG + 1];   /* how often each G was taken (a ghost) */

/* A consumer commits: it takes g. Ghost code, folded into the step that
 * commits the take (a CAS on head or runnext). */
inline take(g) {
  assert(g != 0);        /* a nil G was taken */
  taken[g]++;
  assert(taken[g] == 1)  /* a G was taken twice */
}

/* A CAS of head from h to h + n that takes the n Gs in the slots from h.
 * The slot loads are folded into it: the owner overwrites a slot in
 * [h, tail) only once head has moved past it, and then this CAS fails and
 * the values loaded are dropped, so loading them earlier could change no
 * outcome. A taken slot is cleared (a ghost: goro leaves the stale
 * pointer), so that a consumer that wrongly commits a taken slot takes
 * nil. */
inline commit_head(n) {
  head == h ->
  for (i : 0 .. n - 1) {
    tk = ring[(h + i) % N];
    ring[(h + i) % N] = 0;
    take(tk)
  };
  head = h + n;
  tk = 0;
  i = 0
}

/* runqget, owner: runnext first, then the ring head. got says whether a
 * G was taken. */
inline runqget() {
  got = 0;
  atomic {   /* load runnext, CAS it to nil (fails if a thief took it) */
    if
    :: runnext != 0 -> take(runnext); runnext = 0; got = 1
    :: else
    fi
  };
  do
  :: got -> break
  :: else ->
    d_step { h = head; t = tail };   /* acquire; the owner's own tail */
    if
    :: t == h -> break
    :: else ->
      if
      :: atomic { commit_head(1); got = 1 } -> break   /* compare_exchange_weak */
      :: else   /* another consumer moved head (or a spurious failure) */
      fi
    fi
  od;
  h = 0; t = 0
}

proctype Owner()
{
  byte g, gp, old, h, t, n, i, tk;
  bit got;

  do
  :: g < NG ->
    g++;
    gp = g;
    /* runqput(q, gp, next): with next, gp goes to runnext and the G it
     * displaces is kicked to the ring */
    if
    :: true ->
      atomic { old = runnext; runnext = gp };   /* load, CAS loop */
      gp = old;
      old = 0
    :: true
    fi;
    do
    :: gp == 0 -> break
    :: else ->
      d_step { h = head; t = tail };   /* acquire; the owner's own tail */
      if
      :: t - h < N ->
#ifndef MUTANT_PUBLISH
        ring[t % N] = gp;
        tail = t + 1;   /* seq_cst: publishes the slot */
#else
        tail = t + 1;
        ring[t % N] = gp;
#endif
        gp = 0
      :: else ->
        /* runqputslow: half the ring and gp to the global queue */
        n = (t - h) / 2;
        if
        :: n == N / 2 ->
          if
          :: atomic { commit_head(N / 2); take(gp); gp = 0 }   /* globrunqputbatch */
          :: else   /* a thief moved head: the ring is not full now */
          fi
        :: else
        fi
      fi;
      h = 0; t = 0; n = 0
    od
  :: true ->
    runqget();
    got = 0
  :: g == NG -> break
  od;

  /* take what is left, until runqget finds nothing */
  do
  :: runqget();
    if
    :: got -> got = 0
    :: else -> break
    fi
  od
}

/* A thief: runqsteal(q, victim, stealRunNextG = true), as often as it
 * likes. */
proctype Thief()
{
  byte h, t, n, i, tk;

  do
  :: break
  :: /* runqgrab */
     do
     :: atomic { h = head; t = tail; n = t - h; n = n - n / 2 };   /* seq_cst loads */
        if
        :: n == 0 ->
          if   /* load runnext; CAS it to nil */
          :: atomic { runnext != 0 -> take(runnext); runnext = 0 } -> break
          :: else -> break
          fi
        :: n > N / 2   /* an inconsistent h and t: again */
        :: else ->
#ifndef MUTANT
          if
          :: atomic { commit_head(n) } -> break
          :: else   /* another consumer moved head: again */
          fi
#else
          atomic { head = h; commit_head(n) };   /* head = h + n, stored whatever head is */
          break
#endif
        fi
     od;
     atomic { h = 0; t = 0; n = 0 }
  od
}

init {
  byte i;

  atomic {
    run Owner();
    run Thief();
    run Thief()
  };
  _nr_pr == 1;
  for (i : 1 .. NG) {
    assert(taken[i] == 1)   /* every G put was taken */
  }
}
