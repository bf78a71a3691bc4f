//! The wait between attempts.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::budget::{RetryBudget, RetryCost};

pin_project! {
    /// The backoff before the next attempt: a timer that, if dropped before
    /// it fires (the caller gave up on the request), gives the retry's cost
    /// back to the budget.
    ///
    /// The timer is boxed (allocated only when a retry is planned), so that
    /// tower's response future, which has room for it, stays small on the
    /// happy path.
    pub struct Backoff {
        sleep: Pin<Box<Sleep>>,
        refund: Option<Refund>,
    }

    impl PinnedDrop for Backoff {
        fn drop(this: Pin<&mut Self>) {
            if let Some(Refund { budget, cost }) = this.project().refund.take() {
                budget.cancel_retry(cost);
            }
        }
    }
}

struct Refund {
    budget: Arc<dyn RetryBudget>,
    cost: RetryCost,
}

impl Backoff {
    pub(super) fn new(sleep: Sleep, budget: Option<Arc<dyn RetryBudget>>, cost: RetryCost) -> Self {
        Backoff {
            sleep: Box::pin(sleep),
            refund: budget.map(|budget| Refund { budget, cost }),
        }
    }
}

impl std::fmt::Debug for Backoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backoff")
            .field("deadline", &self.sleep.deadline())
            .finish()
    }
}

impl Future for Backoff {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        ready!(this.sleep.as_mut().poll(cx));
        // The retry goes ahead: its cost stays spent.
        *this.refund = None;
        Poll::Ready(())
    }
}
