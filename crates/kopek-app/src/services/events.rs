use crate::app::{cursor_not_found, App};
use crate::error::AppError;
use crate::records::*;

impl App {
    pub async fn event(&self, scope: &Scope, id: &str) -> Result<Event, AppError> {
        let mut tx = self.store.read().await?;
        tx.event(scope, id)
            .await?
            .ok_or_else(|| AppError::NotFound {
                object: "event",
                id: id.to_owned(),
                param: Some("id"),
            })
    }

    pub async fn events(
        &self,
        scope: &Scope,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> Result<Page<Event>, AppError> {
        let mut tx = self.store.read().await?;
        tx.events(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("event", page))
    }
}
