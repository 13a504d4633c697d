// The interposed calls that start a process or a new image: fork, vfork, posix_spawn and the
// exec family. Before a child can share them, or a new image inherit them, uepoll's objects
// become the kernel objects behind them (handover.cpp).
#undef _FORTIFY_SOURCE
#include <spawn.h>
#include <unistd.h>

#include "preload/libc.hpp"
#include "preload/preload.hpp"
#include "preload/reentry.hpp"

using namespace uepoll::preload;  // NOLINT: the C functions below are this file's whole point

extern "C" {

static void before_new_process() {
  if (config().objects) {
    Inside inside;
    hand_over_all();
  }
}

pid_t fork() noexcept {
  before_new_process();
  return fork_keeping_listeners([] { return libc().fork(); });
}

pid_t vfork() noexcept {
  // As fork: a vfork child would run the interposer on the parent's memory, its table included.
  return fork();
}

int posix_spawn(pid_t* pid, const char* path, const posix_spawn_file_actions_t* actions,
                const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  before_new_process();
  return libc().posix_spawn(pid, path, actions, attr, argv, envp);
}

int posix_spawnp(pid_t* pid, const char* file, const posix_spawn_file_actions_t* actions,
                 const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  before_new_process();
  return libc().posix_spawnp(pid, file, actions, attr, argv, envp);
}

int execve(const char* path, char* const argv[], char* const envp[]) noexcept {
  before_new_process();
  return libc().execve(path, argv, envp);
}

int execv(const char* path, char* const argv[]) noexcept {
  before_new_process();
  return libc().execv(path, argv);
}

int execvp(const char* file, char* const argv[]) noexcept {
  before_new_process();
  return libc().execvp(file, argv);
}

int execvpe(const char* file, char* const argv[], char* const envp[]) noexcept {
  before_new_process();
  return libc().execvpe(file, argv, envp);
}

}  // extern "C"
