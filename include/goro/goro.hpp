// goro/goro.hpp — the umbrella header: everything a goro program uses.
// goro is Go's runtime scheduler (G/M/P, work stealing, gopark/goready) for C++20.
#pragma once

#include <goro/chan.hpp>
#include <goro/debug.hpp>
#include <goro/poll.hpp>
#include <goro/runtime.hpp>
#include <goro/select.hpp>
#include <goro/sync.hpp>
#include <goro/time.hpp>
