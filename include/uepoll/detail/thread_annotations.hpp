// Clang thread-safety attributes. They expand to nothing on other compilers; CI builds with
// Clang and -Wthread-safety so that every GUARDED_BY / REQUIRES below is checked.
#pragma once

#if defined(__clang__)
#define UEPOLL_TSA(x) __attribute__((x))
#else
#define UEPOLL_TSA(x)
#endif

#define UEPOLL_CAPABILITY(x) UEPOLL_TSA(capability(x))
#define UEPOLL_SCOPED_CAPABILITY UEPOLL_TSA(scoped_lockable)
#define UEPOLL_GUARDED_BY(x) UEPOLL_TSA(guarded_by(x))
#define UEPOLL_PT_GUARDED_BY(x) UEPOLL_TSA(pt_guarded_by(x))
#define UEPOLL_ACQUIRED_BEFORE(...) UEPOLL_TSA(acquired_before(__VA_ARGS__))
#define UEPOLL_ACQUIRED_AFTER(...) UEPOLL_TSA(acquired_after(__VA_ARGS__))
#define UEPOLL_REQUIRES(...) UEPOLL_TSA(requires_capability(__VA_ARGS__))
#define UEPOLL_ACQUIRE(...) UEPOLL_TSA(acquire_capability(__VA_ARGS__))
#define UEPOLL_RELEASE(...) UEPOLL_TSA(release_capability(__VA_ARGS__))
#define UEPOLL_TRY_ACQUIRE(...) UEPOLL_TSA(try_acquire_capability(__VA_ARGS__))
#define UEPOLL_EXCLUDES(...) UEPOLL_TSA(locks_excluded(__VA_ARGS__))
#define UEPOLL_ASSERT_CAPABILITY(x) UEPOLL_TSA(assert_capability(x))
#define UEPOLL_RETURN_CAPABILITY(x) UEPOLL_TSA(lock_returned(x))
#define UEPOLL_NO_THREAD_SAFETY_ANALYSIS UEPOLL_TSA(no_thread_safety_analysis)
