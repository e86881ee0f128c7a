//! The pump: events an adapter produced on its own (a gateway's frames, a
//! timer) into the queue, in the order they came.
//!
//! Batches that are already waiting when the pump takes one are stored with
//! it, in one transaction ([`take_group`]): a gateway that sends a burst of
//! frames yields a batch per frame, and a commit per frame would make the
//! store, not the platform, set the pace. The group keeps their order, the
//! last position any of them carried, and every frame they held; it is
//! stored whole or not at all, as a single batch is.
//!
//! Such a batch cannot be asked for again the way a poll can, so a batch
//! that cannot be stored because the disk is full is held, in memory and in
//! order, until it can: the pump says so once, tries a small write every
//! [`FULL_CHECK`], then stores the same batch (gated again), and says when
//! it works again. Its cursor (Discord's sequence) commits with it, so
//! nothing is acknowledged meanwhile, and a process that dies while full
//! resumes from the last stored one. Any other failure loses the batch, as
//! before: said on stderr. Frames the adapter held for the batch
//! (`send-text-after-commit`: a platform's acknowledgement) are sent once it
//! is stored, and never when it is not, so the platform sends it again.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::poll::{FULL_CHECK, home_of, wait_for_room};
use crate::db::Episode;
use crate::router::Router;
use crate::runtime::actor::Unsolicited;

/// Events stored together in one group, at most (a batch larger than this
/// is stored alone, as it came).
pub(crate) const GROUP_EVENTS: usize = 256;

/// Stores what arrives on `rx` until it closes.
pub fn spawn(
    router: Arc<Router>,
    mut rx: mpsc::UnboundedReceiver<Unsolicited>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut full = Episode::default();
        let mut next = None;
        loop {
            let first = match next.take() {
                Some(u) => u,
                None => match rx.recv().await {
                    Some(u) => u,
                    None => break,
                },
            };
            let mut group;
            (group, next) = take_group(first, || rx.try_recv().ok());
            if store(&router, &group, &mut full).await {
                // Acknowledgements the adapter held until now.
                for frame in group.held.drain(..) {
                    frame.release();
                }
            }
        }
    })
}

/// `first`, joined by the batches `waiting` yields while they come from the
/// same component and the group stays within [`GROUP_EVENTS`]; the batch
/// that ended the group, if one did, is returned to be stored next.
fn take_group(
    mut first: Unsolicited,
    mut waiting: impl FnMut() -> Option<Unsolicited>,
) -> (Unsolicited, Option<Unsolicited>) {
    while first.batch.events.len() < GROUP_EVENTS {
        let Some(u) = waiting() else {
            return (first, None);
        };
        if u.component != first.component
            || first.batch.events.len() + u.batch.events.len() > GROUP_EVENTS
        {
            return (first, Some(u));
        }
        let Unsolicited { batch, held, .. } = u;
        first.batch.events.extend(batch.events);
        // The latest position: what the platform resumes from.
        if batch.cursor.is_some() {
            first.batch.cursor = batch.cursor;
        }
        first.held.extend(held);
    }
    (first, None)
}

/// Stores one batch, waiting out a full disk; whether it was stored.
async fn store(router: &Router, u: &Unsolicited, full: &mut Episode) -> bool {
    let name = &*u.component;
    loop {
        match router.ingest(name, u.batch.clone()).await {
            Ok(_) => {
                if let Some((tries, lasted)) = full.succeeded() {
                    tracing::warn!(
                        component = name,
                        "the disk has room again: {name} events are stored again (the disk was \
                         full for {}s, {tries} failed attempt(s))",
                        lasted.as_secs()
                    );
                }
                return true;
            }
            Err(e) if e.is_full() => {
                if full.failed() {
                    tracing::error!(
                        component = name,
                        "cannot store {} {name} event(s): the disk holding AIRLOCK_HOME ({}) is \
                         full ({e}); free space there; airlock holds them and what follows, \
                         retries every {}s, and stores no {name} position until it can",
                        u.batch.events.len(),
                        home_of(router),
                        FULL_CHECK.as_secs()
                    );
                }
                wait_for_room(router, full).await;
            }
            Err(e) => {
                tracing::error!(
                    component = name,
                    "cannot store events ({e}); they are lost; check the disk under $AIRLOCK_HOME"
                );
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::test_values::direct_message;
    use crate::bindings::types::{EventBatch, InboundEvent};

    fn message(id: usize) -> InboundEvent {
        InboundEvent::Message(direct_message("c", &id.to_string(), ""))
    }

    /// A batch of `component` with the messages `ids` and `cursor`.
    fn batch(component: &str, ids: std::ops::Range<usize>, cursor: Option<&str>) -> Unsolicited {
        Unsolicited::new(
            Arc::from(component),
            EventBatch {
                events: ids.map(message).collect(),
                cursor: cursor.map(str::to_owned),
            },
        )
    }

    fn ids(u: &Unsolicited) -> Vec<String> {
        u.batch
            .events
            .iter()
            .map(|e| match e {
                InboundEvent::Message(m) => m.message_id.clone(),
                _ => unreachable!("only messages here"),
            })
            .collect()
    }

    /// Runs [`take_group`] over `first` and then `queue`, in order: the
    /// group, the batch that ended it, and what was left untaken.
    fn group(
        first: Unsolicited,
        queue: Vec<Unsolicited>,
    ) -> (Unsolicited, Option<Unsolicited>, usize) {
        let mut queue = std::collections::VecDeque::from(queue);
        let (group, next) = take_group(first, || queue.pop_front());
        (group, next, queue.len())
    }

    #[test]
    fn waiting_batches_of_one_component_join_in_order_with_the_latest_cursor() {
        let (g, next, left) = group(
            batch("discord", 0..1, Some("1")),
            vec![
                batch("discord", 1..3, Some("3")),
                batch("discord", 3..3, None),
                batch("discord", 3..4, None),
            ],
        );
        assert_eq!(ids(&g), ["0", "1", "2", "3"]);
        assert_eq!(g.batch.cursor.as_deref(), Some("3"));
        assert!(next.is_none());
        assert_eq!(left, 0);
    }

    #[test]
    fn another_component_ends_the_group_and_is_kept_for_next() {
        let (g, next, left) = group(
            batch("discord", 0..1, Some("1")),
            vec![
                batch("slack", 5..6, Some("s")),
                batch("discord", 1..2, Some("2")),
            ],
        );
        assert_eq!(ids(&g), ["0"]);
        assert_eq!(g.batch.cursor.as_deref(), Some("1"));
        let next = next.expect("the slack batch is stored next");
        assert_eq!((&*next.component, ids(&next)), ("slack", vec!["5".into()]));
        assert_eq!(left, 1, "nothing past it was taken");
    }

    #[test]
    fn the_group_stays_within_its_size_and_a_big_batch_goes_alone() {
        // Filling up exactly, then one more: that one waits.
        let (g, next, left) = group(
            batch("discord", 0..GROUP_EVENTS - 1, None),
            vec![
                batch("discord", 1000..1001, None),
                batch("discord", 2000..2001, None),
            ],
        );
        assert_eq!(g.batch.events.len(), GROUP_EVENTS);
        assert!(next.is_none());
        assert_eq!(left, 1, "a full group takes no more");

        let (g, next, _) = group(
            batch("discord", 0..1, None),
            vec![batch("discord", 0..GROUP_EVENTS, None)],
        );
        assert_eq!(g.batch.events.len(), 1);
        assert_eq!(next.map(|n| n.batch.events.len()), Some(GROUP_EVENTS));

        // A batch over the size is neither cut nor joined.
        let (g, next, left) = group(
            batch("discord", 0..GROUP_EVENTS + 5, None),
            vec![batch("discord", 0..1, None)],
        );
        assert_eq!(g.batch.events.len(), GROUP_EVENTS + 5);
        assert!(next.is_none());
        assert_eq!(left, 1);
    }
}
