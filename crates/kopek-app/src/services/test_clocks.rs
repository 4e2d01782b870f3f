//! Test clocks: simulated time for test-mode customers, moved forward only, and never in
//! live mode.

use crate::app::{cursor_not_found, App, Caller, Change};
use crate::error::AppError;
use crate::records::*;

/// Stripe deletes a test clock 30 days after it is created.
pub const TEST_CLOCK_LIFETIME_S: i64 = 30 * 86_400;

fn not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "test_helpers.test_clock",
        id: id.to_owned(),
        param: Some("id"),
    }
}

/// Live mode has no test clocks: every clock route answers 404 there.
fn test_mode_only(scope: &Scope, id: &str) -> Result<(), AppError> {
    if scope.livemode {
        Err(not_found(id))
    } else {
        Ok(())
    }
}

impl App {
    pub async fn create_test_clock(
        &self,
        caller: &Caller,
        frozen_time: i64,
        name: Option<String>,
    ) -> Result<TestClock, AppError> {
        test_mode_only(&caller.scope, "")?;
        let now = self.clock.now();
        let clock = TestClock {
            id: self.ids.id("clock"),
            created: now,
            name,
            frozen_time,
            status: TestClockStatus::Ready,
            deletes_after: now + TEST_CLOCK_LIFETIME_S,
        };
        let mut tx = self.store.write().await?;
        tx.insert_test_clock(&caller.scope, &clock).await?;
        let rendered = self.render.test_clock(&clock);
        let change = Change {
            event_type: "test_helpers.test_clock.created",
            object_id: clock.id.clone(),
            object: Snapshot::Rendered(rendered.clone()),
            previous: None,
        };
        self.commit(tx, caller, vec![change], &rendered).await?;
        Ok(clock)
    }

    pub async fn test_clock(&self, scope: &Scope, id: &str) -> Result<TestClock, AppError> {
        test_mode_only(scope, id)?;
        let mut tx = self.store.read().await?;
        tx.test_clock(scope, id).await?.ok_or_else(|| not_found(id))
    }

    pub async fn test_clocks(
        &self,
        scope: &Scope,
        page: &PageRequest,
    ) -> Result<Page<TestClock>, AppError> {
        test_mode_only(scope, "")?;
        let mut tx = self.store.read().await?;
        tx.test_clocks(scope, page)
            .await?
            .ok_or_else(|| cursor_not_found("test_helpers.test_clock", page))
    }

    /// Starts moving the clock to `frozen_time`; the worker runs everything due on the way
    /// and marks the clock `ready` when it arrives.
    pub async fn advance_test_clock(
        &self,
        caller: &Caller,
        id: &str,
        frozen_time: i64,
    ) -> Result<TestClock, AppError> {
        test_mode_only(&caller.scope, id)?;
        let mut tx = self.store.write().await?;
        let mut clock = tx
            .test_clock(&caller.scope, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if clock.status != TestClockStatus::Ready {
            return Err(AppError::Conflict {
                param: None,
                message: format!("Test clock {id} is already advancing; wait until it is ready."),
            });
        }
        if frozen_time <= clock.frozen_time {
            return Err(AppError::invalid(
                "frozen_time",
                format!(
                    "Test clocks only move forward: frozen_time must be after {}.",
                    clock.frozen_time
                ),
            ));
        }
        clock.frozen_time = frozen_time;
        clock.status = TestClockStatus::Advancing;
        tx.update_test_clock(&caller.scope, &clock).await?;
        let rendered = self.render.test_clock(&clock);
        let change = Change {
            event_type: "test_helpers.test_clock.advancing",
            object_id: clock.id.clone(),
            object: Snapshot::Rendered(rendered.clone()),
            previous: None,
        };
        self.commit(tx, caller, vec![change], &rendered).await?;
        Ok(clock)
    }

    /// Deletes the clock with its customers and everything they own.
    pub async fn delete_test_clock(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<serde_json::Value, AppError> {
        test_mode_only(&caller.scope, id)?;
        let mut tx = self.store.write().await?;
        let clock = tx
            .test_clock(&caller.scope, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let last = self.render.test_clock(&clock);
        tx.delete_test_clock(&caller.scope, id).await?;
        let response = self.render.deleted("test_helpers.test_clock", id);
        let change = Change {
            event_type: "test_helpers.test_clock.deleted",
            object_id: id.to_owned(),
            object: Snapshot::Rendered(last),
            previous: None,
        };
        self.commit(tx, caller, vec![change], &response).await?;
        Ok(response)
    }
}
