// Ref<T>: an owning, intrusive reference to a reference-counted uepoll object (File and its
// subclasses). Copying takes a reference (get), destruction drops one (put).
#pragma once

#include <new>
#include <utility>

namespace uepoll {

namespace detail {
/// Every allocation site of uepoll asks this first; true means "behave as if out of memory"
/// (the tests' fault injection, src/sync/fault_injection.hpp; always false in release builds).
bool allocation_should_fail() noexcept;
}  // namespace detail

template <class T>
class Ref {
 public:
  Ref() noexcept = default;
  Ref(std::nullptr_t) noexcept {}  // NOLINT: implicit like a pointer
  /// Takes over a reference the caller already owns.
  static Ref adopt(T* p) noexcept { return Ref(p); }
  /// Takes a new reference on `p`.
  static Ref share(T* p) noexcept {
    if (p != nullptr) {
      p->get();
    }
    return Ref(p);
  }

  Ref(const Ref& o) noexcept : p_(o.p_) {
    if (p_ != nullptr) {
      p_->get();
    }
  }
  Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  template <class U>
  Ref(Ref<U>&& o) noexcept : p_(o.release()) {}  // NOLINT: upcast like a pointer
  Ref& operator=(Ref o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~Ref() { reset(); }

  void reset() noexcept {
    if (T* p = std::exchange(p_, nullptr)) {
      p->put();
    }
  }
  /// Gives up ownership without dropping the reference.
  [[nodiscard]] T* release() noexcept { return std::exchange(p_, nullptr); }

  T* get() const noexcept { return p_; }
  T* operator->() const noexcept { return p_; }
  T& operator*() const noexcept { return *p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  explicit Ref(T* p) noexcept : p_(p) {}
  T* p_ = nullptr;
};

/// Allocates a T without throwing; an empty Ref means the allocation failed (ENOMEM).
template <class T, class... Args>
Ref<T> make_ref(Args&&... args) noexcept {
  if (detail::allocation_should_fail()) {
    return nullptr;
  }
  return Ref<T>::adopt(new (std::nothrow) T(std::forward<Args>(args)...));
}

}  // namespace uepoll
