// The epoll engine's file thread pool. Regular files are always "ready" to epoll, and their syscalls
// block (disk, page faults, fsync), so the legacy engine runs them here instead of on the loop thread.
// Completions come back through an eventfd that sits in the engine's epoll set. Which ops come here,
// and the syscall each one runs, is in the op table (ops.h: may_block, run).
//
// Rules:
//  1. A job's memory (its Op, whose pointers reach the kernel) is owned by the pool from Submit until
//     the loop thread takes its completion in Collect.
//  2. Cancel removes a job that has not started; a running job always finishes (its result wins).
//  3. Drain waits, blocking, until no job is queued or running: teardown may not return while a pool
//     thread can still write into JS memory.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "backend.h"

namespace ringio {

class FilePool {
 public:
  FilePool() = default;
  ~FilePool();
  FilePool(const FilePool&) = delete;
  FilePool& operator=(const FilePool&) = delete;

  // The eventfd that becomes readable when completions are waiting (created lazily; -1 before).
  int EventFd();
  void Submit(const Op& op);
  // Removes a queued job; true if it had not started (it then completes with ECANCELED here).
  bool Cancel(int32_t user);
  // Moves finished jobs' results out.
  void TakeDone(std::vector<Cqe>* out);
  void Drain();
  bool Idle();

 private:
  void Start();
  void Worker();

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::deque<Op> queue_;
  std::vector<Cqe> done_;
  std::vector<std::thread> threads_;
  int active_ = 0;
  bool stop_ = false;
  int efd_ = -1;
};

}  // namespace ringio
