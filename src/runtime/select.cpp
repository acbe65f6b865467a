// select.cpp — Go's selectgo: a random poll order, the channels locked in
// address order (each once), pass 1 looks for a ready case, pass 2 queues a
// sudog on every channel and parks, exactly one wakeup wins (selectDone),
// pass 3 dequeues from the rest.
// Invariant: all the select's channels are locked whenever its sudogs are
// queued or dequeued by the select itself. Mirrors select.go.
#include "goro/select.hpp"

#include <algorithm>
#include <vector>

#include "foreign.hpp"
#include "hchan.hpp"
#include "panic.hpp"
#include "proc.hpp"

namespace goro::runtime {
namespace {

using detail::SelectCase;

struct SelState {
  SelectCase* cases;
  std::uint16_t* lockorder;
  int n;
};

void sellock(const SelState& s) {
  hchan* last = nullptr;
  for (int i = 0; i < s.n; i++) {
    hchan* c = s.cases[s.lockorder[i]].c;
    if (c != last) {
      last = c;
      c->lock.lock();
    }
  }
}

void selunlock(const SelState& s) {
  // Unlock in reverse order, each channel once. After the last unlock the
  // select may be woken and its frame gone: read nothing of s after it.
  for (int i = s.n - 1; i >= 0; i--) {
    hchan* c = s.cases[s.lockorder[i]].c;
    if (i > 0 && c == s.cases[s.lockorder[i - 1]].c) continue;  // unlock at the first occurrence
    c->lock.unlock();
  }
}

void selunlock_void(void* s) { selunlock(*static_cast<SelState*>(s)); }

// On g0 after the G is waiting (Go's selparkcommit).
bool selparkcommit(G*, void* s) {
  selunlock(*static_cast<SelState*>(s));
  return true;
}

}  // namespace
}  // namespace goro::runtime

namespace goro::detail {

using namespace goro::runtime;

int selectgo(SelectCase* cas0, int ncases, bool block, bool* recvOK) {
  chanop_enter();
  *recvOK = false;
  // Nil channels' cases are never ready: leave them out entirely.
  constexpr int kStack = 16;
  std::uint16_t order_buf[2 * kStack] = {};
  std::vector<std::uint16_t> order_heap;
  std::uint16_t* pollorder = order_buf;
  if (ncases > kStack) {
    order_heap.resize(2 * static_cast<std::size_t>(ncases));
    pollorder = order_heap.data();
  }
  if (ncases > 65535) throw std::length_error("goro::select: too many cases");
  // Generate a permuted order (inside-out Fisher-Yates), skipping nil channels.
  int norder = 0;
  for (int i = 0; i < ncases; i++) {
    if (cas0[i].c == nullptr) continue;
    int j = static_cast<int>(fastrand() % static_cast<std::uint32_t>(norder + 1));
    pollorder[norder] = pollorder[j];
    pollorder[j] = static_cast<std::uint16_t>(i);
    norder++;
  }
  std::uint16_t* lockorder = pollorder + (ncases > kStack ? ncases : kStack);

  if (norder == 0) {
    if (!block) return -1;
    // select {} or only nil channels: block forever.
    G* gp = current_waiter();
    for (;;) {
      if (gp->threadnote != nullptr) gp->threadnote->clear();
      park_waiter(gp, nullptr, nullptr, ncases == 0 ? WaitReason::select_no_cases : WaitReason::select);
    }
  }

  // Sort the cases by channel address: the lock order, so that two
  // selects on the same channels cannot deadlock. Duplicates end up
  // adjacent and are locked once.
  std::copy(pollorder, pollorder + norder, lockorder);
  std::sort(lockorder, lockorder + norder, [&](std::uint16_t a, std::uint16_t b) { return cas0[a].c < cas0[b].c; });
  SelState st{cas0, lockorder, norder};
  sellock(st);
  ForeignWake fw;

  // Pass 1: look for something already waiting, in the random order.
  for (int i = 0; i < norder; i++) {
    int casi = pollorder[i];
    SelectCase& cs = cas0[casi];
    hchan* c = cs.c;
    if (cs.send) {
      if (c->closed.load(std::memory_order_relaxed) != 0) {
        selunlock(st);
        throw ChannelClosed("send on closed channel");
      }
      if (Sudog* sg = c->recvq.dequeue()) {
        chan_send_locked(c, sg, cs.elem, &selunlock_void, &st);
        return casi;
      }
      if (c->qcount.load(std::memory_order_relaxed) < c->dataqsiz) {
        chanbufput(c, cs.elem);
        selunlock(st);
        return casi;
      }
    } else {
      if (Sudog* sg = c->sendq.dequeue()) {
        chan_recv_locked(c, sg, cs.elem, &selunlock_void, &st);
        *recvOK = true;
        return casi;
      }
      if (c->qcount.load(std::memory_order_relaxed) > 0) {
        chanbufget(c, cs.elem);
        selunlock(st);
        *recvOK = true;
        return casi;
      }
      if (c->closed.load(std::memory_order_relaxed) != 0) {
        selunlock(st);
        return casi;  // closed: received nothing
      }
    }
  }

  if (!block) {
    selunlock(st);
    return -1;
  }

  fw.done();
  // Pass 2: queue on every channel, in lock order.
  G* gp = current_waiter();
  bool thread = gp->threadnote != nullptr;
  std::vector<Sudog> thread_sudogs;  // a plain thread's sudogs live here
  if (thread) {
    thread_sudogs.resize(static_cast<std::size_t>(norder));
    gp->threadnote->clear();
  }
  gp->selectDone.store(0, std::memory_order_relaxed);
  gp->waiting = nullptr;
  Sudog** nextp = &gp->waiting;
  for (int i = 0; i < norder; i++) {
    int casi = lockorder[i];
    SelectCase& cs = cas0[casi];
    Sudog* sg = SudogLease::take(gp, thread ? &thread_sudogs[static_cast<std::size_t>(i)] : nullptr);
    sg->g = gp;
    sg->isSelect = true;
    sg->isSend = cs.send;
    sg->elem = cs.elem;
    sg->c = cs.c;
    detail::chanretain(cs.c);  // as block_on: the waiter holds a reference
    sg->ticket = static_cast<std::uint32_t>(casi);
    *nextp = sg;  // the waiting list, in lock order
    nextp = &sg->waitlink;
    if (cs.send) {
      cs.c->sendq.enqueue(sg);
    } else {
      cs.c->recvq.enqueue(sg);
    }
  }
  gp->param = nullptr;
  park_waiter(gp, &selparkcommit, &st, WaitReason::select);

  // Woken: exactly one sudog won (gp->param), or a close did.
  sellock(st);
  gp->selectDone.store(0, std::memory_order_relaxed);
  Sudog* won = gp->param;
  gp->param = nullptr;

  // Pass 3: dequeue from the unsuccessful channels; the winner was already
  // dequeued by whoever woke us.
  int casi = -1;
  bool caseSuccess = false;
  Sudog* sglist = gp->waiting;
  gp->waiting = nullptr;
  for (int i = 0; i < norder; i++) {
    int k = lockorder[i];
    SelectCase& cs = cas0[k];
    Sudog* sg = sglist;
    if (sg == won) {
      casi = k;
      caseSuccess = sg->success;
    } else if (cs.send) {
      cs.c->sendq.dequeueSudoG(sg);
    } else {
      cs.c->recvq.dequeueSudoG(sg);
    }
    sglist = sg->waitlink;
    sg->waitlink = nullptr;
    sg->elem = nullptr;
    sg->c = nullptr;
    sg->isSend = false;
    SudogLease::give(gp, sg);
    detail::chanrelease(cs.c);  // still locked by us: another handle exists (the case's)
  }
  if (casi < 0) {
    selunlock(st);
    detail::fatal("selectgo: bad wakeup");
  }
  if (cas0[casi].send) {
    selunlock(st);
    if (!caseSuccess) throw ChannelClosed("send on closed channel");
    return casi;
  }
  *recvOK = caseSuccess;
  selunlock(st);
  return casi;
}

}  // namespace goro::detail
