// Fault injection for the GPU backends (tests only). Before each device allocation (buffers,
// memory, descriptor pools and sets) a backend asks whether it should fail as a full device
// would, and it counts the allocations it holds, so that a test can make each allocation of a
// load, a session create or a fork fail in turn and check that nothing is left behind. Before
// each submission of work it asks whether the device should fail as a lost one would, so that
// a test can make a pass fail part-way. When not armed, each question costs one relaxed
// atomic load.
#pragma once

#include <cstdint>

namespace m3::device_faults {

// From the n-th device allocation on (1 = the next one), every allocation fails until
// disarm(). The counters are process-wide: arm only in single-threaded tests.
void fail_from(int64_t nth);
// The same for submissions of work to the device.
void fail_submissions_from(int64_t nth);
// Disarms both.
void disarm();
// Called by a backend right before allocating: true means "report out-of-memory instead".
bool next_allocation_fails();
// Called right before submitting: true means "report the device lost instead".
bool next_submission_fails();

// Device allocations held now (a backend adds one per success and removes it when freed).
void count_allocated(int64_t delta);
int64_t live_allocations();

}  // namespace m3::device_faults
