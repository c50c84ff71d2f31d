// A violated precondition is a programming error in the caller: say what it
// was and stop, as a CHECK would. Internal to worker/.
#ifndef BRAID_WORKER_PRECONDITION_H_
#define BRAID_WORKER_PRECONDITION_H_

#include <cstdio>
#include <cstdlib>
#include <string>

namespace braid::worker {

[[noreturn]] inline void PreconditionFailed(const std::string& what) {
  std::fprintf(stderr, "braid::worker: precondition failed: %s\n", what.c_str());
  std::abort();
}

}  // namespace braid::worker

#endif  // BRAID_WORKER_PRECONDITION_H_
