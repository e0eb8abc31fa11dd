//! Fan-out: pushing events to members' outboxes, the slow-consumer rule,
//! pacing senders while a room's writers are behind, and shedding the
//! largest queues when all of them together pass their bound.

use super::*;

impl Hub {
    /// Pushes `event` to every member of `room`; returns true when an outbox
    /// is backlogged (see [`Outbox::is_backlogged`]): the sender should be paced.
    pub(super) fn fan_out(&self, room: &Room, event: &Arc<Event>) -> bool {
        self.fan_out_except(room, event, None)
    }

    /// [`Hub::fan_out`] to every member of `room` but session `except`.
    pub(super) fn fan_out_except(
        &self,
        room: &Room,
        event: &Arc<Event>,
        except: Option<SessionId>,
    ) -> bool {
        let mut backlogged = false;
        let members = room
            .members
            .iter()
            .filter(|(id, _)| Some(**id) != except)
            .map(|(_, outbox)| outbox);
        for outbox in members {
            match outbox.push(event.clone()) {
                Pushed::Queued => {}
                Pushed::Backlogged => backlogged = true,
                Pushed::Overflowed => self.slow_consumer(outbox),
                Pushed::Closed => {}
            }
        }
        self.stats
            .deliveries
            .fetch_add(room.members.len() as u64, Ordering::Relaxed);
        backlogged
    }

    /// Holds a sender back while an outbox of its room is backlogged: the
    /// writers, i.e. the server, are behind, so the sender waits, and with
    /// it its socket reads, instead of anyone's messages being dropped.
    /// Clients that do not read never cause this (they are left to the
    /// outbox bound); the wait is capped at [`MAX_PACING`] per message.
    pub(super) async fn pace(&self, room_key: &str) {
        let deadline = tokio::time::Instant::now() + MAX_PACING;
        loop {
            let relief = self.relief.notified();
            let backlogged = {
                let state = self.lock();
                let Some(room) = state.rooms.get(room_key) else {
                    return;
                };
                room.members.values().any(|o| o.is_backlogged())
            };
            if !backlogged || tokio::time::Instant::now() >= deadline {
                return;
            }
            let _ = tokio::time::timeout(PACING_RECHECK, relief).await;
        }
    }

    pub(super) fn slow_consumer(&self, outbox: &Outbox) {
        self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            limit = outbox.limit(),
            "disconnecting a slow consumer: its outbound queue is full"
        );
    }

    /// Bytes queued for every session together.
    pub fn queued_bytes(&self) -> usize {
        self.queued.bytes()
    }

    /// While all outboxes together hold more than `outbox_total_limit`,
    /// closes queues as slow consumers: first those whose writer is stalled
    /// (its client stopped reading), largest first, then the other largest
    /// ones. A fast reader with a momentary burst is the last to go; an
    /// empty queue is never closed; nobody else waits for them.
    pub(super) fn shed_queues(&self) {
        if self.queued.bytes() <= self.queued.limit() {
            return;
        }
        let mut queues: Vec<(bool, usize, Arc<Outbox>)> = self
            .lock()
            .sessions
            .values()
            .map(|m| {
                (
                    m.outbox.is_stalled(),
                    m.outbox.queued_bytes(),
                    m.outbox.clone(),
                )
            })
            .collect();
        // Stalled first, then largest.
        queues.sort_unstable_by_key(|q| (!q.0, std::cmp::Reverse(q.1)));
        for (_, _, outbox) in queues {
            if self.queued.bytes() <= self.queued.limit() {
                break;
            }
            if outbox.shed() > 0 {
                self.stats.slow_consumers.fetch_add(1, Ordering::Relaxed);
                crate::limits::warn_refusal(
                    "outbound_total",
                    &format!(
                        "a session with the largest queue (all queues over {} bytes)",
                        self.queued.limit()
                    ),
                );
            }
        }
    }

    /// Queues a transport's own packet for one session (an
    /// [`EventKind::Wire`]: an acknowledgement, a protocol reply), in order
    /// with its events, under the same slow-consumer rule.
    pub fn push_wire(&self, outbox: &Outbox, event: Arc<Event>) {
        if outbox.push(event) == Pushed::Overflowed {
            self.slow_consumer(outbox);
        }
    }

    /// Pushes to one outbox, applying the slow-consumer rule.
    pub(super) fn deliver(&self, outbox: &Outbox, event: Arc<Event>) {
        if outbox.push(event) == Pushed::Overflowed {
            self.slow_consumer(outbox);
        }
        self.stats.deliveries.fetch_add(1, Ordering::Relaxed);
    }
}
