//! The courier queue: messages, their delivery attempts (dispatches) and the workers' leases.

use sallyport_core::courier::{Dispatch, Message, MessageStatus, MessageType};
use sallyport_core::store::{StoreError, StoreResult};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Ts, other_err};

pub mod sql {
    use sallyport_core::courier::MessageQuery;

    use crate::Sql;
    use crate::args::limit_arg;

    pub const MESSAGE_COLUMNS: &str = "id, type, status, recipient, subject, body, template_type, \
         template_data, channel, send_count, next_attempt_at, created_at, updated_at";

    pub const INSERT_MESSAGE: &str = "INSERT INTO courier_messages (id, type, status, recipient, subject, \
         body, template_type, template_data, channel, send_count, next_attempt_at, lease_until, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $13)";
    /// `$3` is NULL unless the outcome moves the next attempt (a retry).
    pub const FINISH_MESSAGE: &str = "UPDATE courier_messages SET status = $2, send_count = send_count + 1, \
         next_attempt_at = COALESCE($3, next_attempt_at), lease_until = NULL, updated_at = $4 WHERE id = $1";
    pub const INSERT_DISPATCH: &str = "INSERT INTO courier_message_dispatches (id, message_id, status, \
         error, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)";
    pub const DISPATCHES: &str = "SELECT id, message_id, status, error, created_at, updated_at \
         FROM courier_message_dispatches WHERE message_id = $1 ORDER BY created_at, id";

    pub fn get(id: uuid::Uuid) -> Sql {
        let mut sql = Sql::new(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM courier_messages WHERE id = "
        ));
        sql.bind(id);
        sql
    }

    /// Leases up to `$3` due messages until `$1` at `$2` (now): queued ones whose next attempt is due,
    /// and processing ones whose worker's lease ran out. `row_lock` is what the dialect needs so that
    /// concurrent workers skip each other's rows: `FOR UPDATE SKIP LOCKED` on PostgreSQL, nothing on
    /// SQLite, whose single writer runs the statement alone. RETURNING has no order: callers sort.
    pub fn claim(row_lock: &str) -> String {
        format!(
            "UPDATE courier_messages SET status = 'processing', lease_until = $1, updated_at = $2 \
             WHERE id IN (SELECT id FROM courier_messages \
             WHERE (status = 'queued' AND next_attempt_at <= $2) OR (status = 'processing' AND lease_until < $2) \
             ORDER BY created_at, id LIMIT $3 {row_lock}) \
             RETURNING {MESSAGE_COLUMNS}"
        )
    }

    /// Newest first, keyset over (created_at, id).
    pub fn list(q: &MessageQuery) -> Sql {
        let mut sql = Sql::new(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM courier_messages WHERE 1 = 1"
        ));
        if let Some(status) = q.status {
            sql.push(" AND status = ").bind(status.as_str());
        }
        if let Some(recipient) = &q.recipient {
            sql.push(" AND recipient = ").bind(recipient.as_str());
        }
        if let Some(before) = q.before {
            // An unknown `before` compares with NULL and matches nothing.
            sql.push(" AND (created_at, id) < (SELECT created_at, id FROM courier_messages WHERE id = ")
                .bind(before)
                .push(")");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .bind(limit_arg(q.limit));
        sql
    }
}

#[derive(sqlx::FromRow)]
pub struct MessageRow {
    id: Uuid,
    #[sqlx(rename = "type")]
    kind: String,
    status: String,
    recipient: String,
    subject: String,
    body: String,
    template_type: String,
    template_data: Json<Value>,
    channel: String,
    send_count: i32,
    next_attempt_at: Ts,
    created_at: Ts,
    updated_at: Ts,
}

impl MessageRow {
    /// The claim order: oldest first.
    pub fn sort_key(&self) -> (Ts, Uuid) {
        (self.created_at, self.id)
    }
}

impl TryFrom<MessageRow> for Message {
    type Error = StoreError;

    fn try_from(r: MessageRow) -> StoreResult<Message> {
        Ok(Message {
            id: r.id,
            status: MessageStatus::parse(&r.status)
                .ok_or_else(|| other_err(format!("stored message status {:?} is not valid", r.status)))?,
            kind: MessageType::parse(&r.kind)
                .ok_or_else(|| other_err(format!("stored message type {:?} is not valid", r.kind)))?,
            recipient: r.recipient,
            subject: r.subject,
            body: r.body,
            template_type: r.template_type,
            template_data: r.template_data.0,
            channel: r.channel,
            send_count: r.send_count,
            next_attempt_at: r.next_attempt_at.0,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
            dispatches: vec![],
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct DispatchRow {
    id: Uuid,
    message_id: Uuid,
    status: String,
    error: Option<Json<Value>>,
    created_at: Ts,
    updated_at: Ts,
}

impl From<DispatchRow> for Dispatch {
    fn from(r: DispatchRow) -> Dispatch {
        Dispatch {
            id: r.id,
            message_id: r.message_id,
            status: r.status,
            error: r.error.map(|j| j.0),
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        }
    }
}

/// Defines `insert_messages`, which `save_codes` shares with `enqueue_messages`.
#[doc(hidden)]
#[macro_export]
macro_rules! __courier_helpers {
    () => {
        async fn insert_messages(
            conn: &mut Conn,
            messages: &[$crate::__private::sallyport_core::courier::Message],
        ) -> StoreResult<()> {
            use sqlx::types::Json;
            use $crate::Ts;
            for m in messages {
                sqlx::query($crate::__private::courier_sql::INSERT_MESSAGE)
                    .bind(m.id)
                    .bind(m.kind.as_str())
                    .bind(m.status.as_str())
                    .bind(m.recipient.as_str())
                    .bind(m.subject.as_str())
                    .bind(m.body.as_str())
                    .bind(m.template_type.as_str())
                    .bind(Json(&m.template_data))
                    .bind(m.channel.as_str())
                    .bind(m.send_count)
                    .bind(Ts(m.next_attempt_at))
                    .bind(Ts(m.created_at))
                    .bind(Ts(m.updated_at))
                    .execute(&mut *conn)
                    .await
                    .map_err($crate::db_err)?;
            }
            Ok(())
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_courier_store {
    ($store:ty, $row_lock:expr) => {
        #[$crate::__private::async_trait]
        impl $crate::__private::sallyport_core::courier::CourierStore for $store {
            #[tracing::instrument(level = "debug", skip_all)]
            async fn enqueue_messages(
                &self,
                messages: &[$crate::__private::sallyport_core::courier::Message],
            ) -> StoreResult<()> {
                if messages.is_empty() {
                    return Ok(());
                }
                let mut tx = self.writer.begin().await.map_err($crate::db_err)?;
                insert_messages(&mut *tx, messages).await?;
                tx.commit().await.map_err($crate::db_err)
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn claim_messages(
                &self,
                limit: u32,
                lease: $crate::__private::time::Duration,
                now: $crate::__private::time::OffsetDateTime,
            ) -> StoreResult<Vec<$crate::__private::sallyport_core::courier::Message>> {
                use $crate::__private::MessageRow;
                use $crate::Ts;
                if limit == 0 {
                    return Ok(vec![]);
                }
                let sql = $crate::__private::courier_sql::claim($row_lock);
                let mut rows = sqlx::query_as::<Db, MessageRow>(&sql)
                    .bind(Ts(now + lease))
                    .bind(Ts(now))
                    .bind(i64::from(limit))
                    .fetch_all(&self.writer)
                    .await
                    .map_err($crate::db_err)?;
                rows.sort_by_key(MessageRow::sort_key);
                rows.into_iter().map(TryInto::try_into).collect()
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn finish_delivery(
                &self,
                id: $crate::__private::uuid::Uuid,
                outcome: &$crate::__private::sallyport_core::courier::DeliveryOutcome,
                now: $crate::__private::time::OffsetDateTime,
            ) -> StoreResult<()> {
                use sqlx::types::Json;
                use $crate::__private::courier_sql as q;
                use $crate::__private::sallyport_core::courier::{DeliveryOutcome, MessageStatus};
                use $crate::Ts;
                let (status, retry_at, error) = match outcome {
                    DeliveryOutcome::Sent => (MessageStatus::Sent, None, None),
                    DeliveryOutcome::Retry { error, retry_at } => (
                        MessageStatus::Queued,
                        Some(Ts(*retry_at)),
                        Some(Json(error)),
                    ),
                    DeliveryOutcome::Abandon { error } => (MessageStatus::Abandoned, None, Some(Json(error))),
                };
                let mut tx = self.writer.begin().await.map_err($crate::db_err)?;
                let done = sqlx::query(q::FINISH_MESSAGE)
                    .bind(id)
                    .bind(status.as_str())
                    .bind(retry_at)
                    .bind(Ts(now))
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::db_err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                let dispatch_status = if error.is_none() { "success" } else { "failed" };
                sqlx::query(q::INSERT_DISPATCH)
                    .bind($crate::__private::uuid::Uuid::new_v4())
                    .bind(id)
                    .bind(dispatch_status)
                    .bind(error)
                    .bind(Ts(now))
                    .bind(Ts(now))
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::db_err)?;
                tx.commit().await.map_err($crate::db_err)
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn list_messages(
                &self,
                query: &$crate::__private::sallyport_core::courier::MessageQuery,
            ) -> StoreResult<Vec<$crate::__private::sallyport_core::courier::Message>> {
                let sql = $crate::__private::courier_sql::list(query);
                let rows = $crate::bind_all(
                    sqlx::query_as::<Db, $crate::__private::MessageRow>(&sql.text),
                    sql.args,
                )
                .fetch_all(&mut *self.read().await?)
                .await
                .map_err($crate::db_err)?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn get_message(
                &self,
                id: $crate::__private::uuid::Uuid,
            ) -> StoreResult<$crate::__private::sallyport_core::courier::Message> {
                use $crate::__private::sallyport_core::courier::{Dispatch, Message};
                use $crate::__private::{DispatchRow, MessageRow, courier_sql as q};
                let sql = q::get(id);
                let row = $crate::bind_all(sqlx::query_as::<Db, MessageRow>(&sql.text), sql.args)
                    .fetch_optional(&mut *self.read().await?)
                    .await
                    .map_err($crate::db_err)?
                    .ok_or(StoreError::NotFound)?;
                let mut message = Message::try_from(row)?;
                let dispatches = sqlx::query_as::<Db, DispatchRow>(q::DISPATCHES)
                    .bind(id)
                    .fetch_all(&mut *self.read().await?)
                    .await
                    .map_err($crate::db_err)?;
                message.dispatches = dispatches.into_iter().map(Dispatch::from).collect();
                Ok(message)
            }
        }
    };
}
