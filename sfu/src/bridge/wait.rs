//! How a worker sleeps: until the media socket has datagrams, another thread
//! wakes it (a command, datagrams handed over), or its next deadline comes.
//!
//! One epoll set per worker watches the shared socket with `EPOLLEXCLUSIVE`
//! (a datagram wakes one sleeping worker, not all), the worker's eventfd and
//! its timerfd (deadlines to the microsecond: NACK and feedback timers, ICE). A
//! [`Waker`] writes the eventfd only when its worker is asleep or about to be,
//! so a busy worker is handed work without a system call.

use std::io;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

const SOCKET: u64 = 0;
const WAKE: u64 = 1;
const TIMER: u64 = 2;

/// Wakes one worker from any thread.
pub(super) struct Waker {
    event: EventFd,
    /// The worker is asleep or about to check for work one last time.
    sleeping: AtomicBool,
}

impl Waker {
    pub(super) fn new() -> io::Result<Waker> {
        Ok(Waker {
            event: EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?,
            sleeping: AtomicBool::new(false),
        })
    }

    /// Call after giving the worker something to do.
    pub(super) fn wake(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            let _ = self.event.write(1);
        }
    }
}

/// A worker's side: its epoll set and timer.
pub(super) struct Sleeper {
    epoll: Epoll,
    timer: TimerFd,
    /// When the timer fires, if it is set and has not fired yet.
    armed: Option<Instant>,
}

impl Sleeper {
    pub(super) fn new(socket: &UdpSocket, waker: &Waker) -> io::Result<Sleeper> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        let readable = EpollFlags::EPOLLIN;
        epoll.add(
            socket,
            EpollEvent::new(readable | EpollFlags::EPOLLEXCLUSIVE, SOCKET),
        )?;
        epoll.add(&waker.event, EpollEvent::new(readable, WAKE))?;
        epoll.add(&timer, EpollEvent::new(readable, TIMER))?;
        Ok(Sleeper {
            epoll,
            timer,
            armed: None,
        })
    }

    /// Sleeps until `deadline` at the latest, unless `has_work` says otherwise
    /// once the waker is armed (closing the gap where a wake would be missed).
    pub(super) fn sleep(
        &mut self,
        waker: &Waker,
        deadline: Instant,
        has_work: impl FnOnce() -> bool,
    ) {
        waker.sleeping.store(true, Ordering::SeqCst);
        if has_work() {
            waker.sleeping.store(false, Ordering::SeqCst);
            return;
        }
        // A timer still set for no later than the deadline can stay: waking
        // early costs a loop, setting it costs a system call per sleep.
        let now = Instant::now();
        if self.armed.is_none_or(|at| at <= now || at > deadline) {
            // A zero expiry would disarm the timer instead of firing it.
            let after = deadline
                .saturating_duration_since(now)
                .max(Duration::from_micros(1));
            let _ = self.timer.set(
                Expiration::OneShot(TimeSpec::from_duration(after)),
                TimerSetTimeFlags::empty(),
            );
            self.armed = Some(now + after);
        }
        let mut events = [EpollEvent::empty(); 3];
        let n = self
            .epoll
            .wait(&mut events, EpollTimeout::NONE)
            .unwrap_or(0);
        waker.sleeping.store(false, Ordering::SeqCst);
        // The eventfd and a fired timer stay readable until read; the socket
        // is the caller's to read.
        for e in &events[..n] {
            match e.data() {
                WAKE => {
                    let _ = waker.event.read();
                }
                TIMER => {
                    let _ = self.timer.wait();
                    self.armed = None;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn setup() -> (UdpSocket, Arc<Waker>, Sleeper) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let waker = Arc::new(Waker::new().unwrap());
        let sleeper = Sleeper::new(&socket, &waker).unwrap();
        (socket, waker, sleeper)
    }

    /// Wakes `waker` from another thread after `after`.
    fn wake_in(waker: &Arc<Waker>, after: Duration) -> std::thread::JoinHandle<()> {
        let waker = waker.clone();
        std::thread::spawn(move || {
            std::thread::sleep(after);
            waker.wake();
        })
    }

    #[test]
    fn the_deadline_ends_the_sleep() {
        let (_socket, waker, mut sleeper) = setup();
        let t0 = Instant::now();
        sleeper.sleep(&waker, t0 + Duration::from_millis(20), || false);
        assert!(t0.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn a_datagram_wakes_the_sleeper() {
        let (socket, waker, mut sleeper) = setup();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"x", socket.local_addr().unwrap()).unwrap();
        let t0 = Instant::now();
        sleeper.sleep(&waker, t0 + Duration::from_secs(5), || false);
        assert!(t0.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_wake_from_another_thread_ends_the_sleep_and_work_found_first_skips_it() {
        let (_socket, waker, mut sleeper) = setup();
        let t0 = Instant::now();
        let thread = wake_in(&waker, Duration::from_millis(10));
        sleeper.sleep(&waker, t0 + Duration::from_secs(5), || false);
        assert!(t0.elapsed() < Duration::from_secs(5));
        thread.join().unwrap();
        let t1 = Instant::now();
        sleeper.sleep(&waker, t1 + Duration::from_secs(5), || true);
        assert!(t1.elapsed() < Duration::from_secs(1));
        // A wake with nobody asleep costs nothing and leaves no stale event.
        waker.wake();
        let t2 = Instant::now();
        sleeper.sleep(&waker, t2 + Duration::from_millis(20), || false);
        assert!(t2.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn an_earlier_deadline_shortens_a_timer_set_for_later() {
        let (_socket, waker, mut sleeper) = setup();
        // A sleep with a far deadline, ended by a wake: the timer stays set.
        let thread = wake_in(&waker, Duration::from_millis(10));
        sleeper.sleep(&waker, Instant::now() + Duration::from_secs(30), || false);
        thread.join().unwrap();
        let t0 = Instant::now();
        sleeper.sleep(&waker, t0 + Duration::from_millis(20), || false);
        let slept = t0.elapsed();
        assert!(slept >= Duration::from_millis(20) && slept < Duration::from_secs(5));
    }
}
