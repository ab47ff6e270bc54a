//! Schema migrations through sqlx's migrator, and the health check.

pub mod sql {
    pub const PING: &str = "SELECT 1";
    /// Whether sqlx's bookkeeping table exists yet: the one query that differs per dialect.
    pub fn has_migrations_table(database: &str) -> &'static str {
        if database == "PostgreSQL" {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
        } else {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
        }
    }
    pub const APPLIED_MIGRATIONS: &str = "SELECT version, success FROM _sqlx_migrations";
}

/// The version to undo down to so that the newest `steps` of `applied` are reverted (0 reverts all).
pub fn undo_target(applied: &[i64], steps: u32) -> Option<i64> {
    if steps == 0 || applied.is_empty() {
        return None;
    }
    let mut versions = applied.to_vec();
    versions.sort_unstable_by(|a, b| b.cmp(a));
    let keep = usize::try_from(steps).unwrap_or(usize::MAX);
    Some(versions.get(keep).copied().unwrap_or(0))
}

#[doc(hidden)]
#[macro_export]
macro_rules! __impl_migration_store {
    ($store:ty, $migrator:expr) => {
        /// Versions sqlx recorded as successfully applied; none when its table doesn't exist yet.
        async fn applied_versions(conn: &mut Conn) -> StoreResult<Vec<i64>> {
            use $crate::__private::migration_sql as q;
            let exists: i64 = sqlx::query_scalar(q::has_migrations_table(<Db as sqlx::Database>::NAME))
                .fetch_one(&mut *conn)
                .await
                .map_err($crate::db_err)?;
            if exists == 0 {
                return Ok(vec![]);
            }
            let rows: Vec<(i64, bool)> = sqlx::query_as(q::APPLIED_MIGRATIONS)
                .fetch_all(&mut *conn)
                .await
                .map_err($crate::db_err)?;
            Ok(rows
                .into_iter()
                .filter(|(_, ok)| *ok)
                .map(|(v, _)| v)
                .collect())
        }

        #[$crate::__private::async_trait]
        impl MigrationStore for $store {
            #[tracing::instrument(level = "debug", skip_all)]
            async fn ping(&self) -> StoreResult<()> {
                sqlx::query($crate::__private::migration_sql::PING)
                    .execute(&mut *self.read().await?)
                    .await
                    .map_err($crate::db_err)?;
                Ok(())
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn migration_status(&self) -> StoreResult<Vec<MigrationStatus>> {
                let applied = applied_versions(&mut *self.read().await?).await?;
                Ok($migrator
                    .iter()
                    .filter(|m| !m.migration_type.is_down_migration())
                    .map(|m| MigrationStatus {
                        version: m.version,
                        name: m.description.to_string(),
                        applied: applied.contains(&m.version),
                    })
                    .collect())
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn migrate_up(&self) -> StoreResult<()> {
                $migrator.run(&self.writer).await.map_err($crate::other_err)
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn migrate_down(&self, steps: u32) -> StoreResult<()> {
                self.cache_changed().await;
                // The writer pool may have one connection only: given back before `undo` takes it.
                let applied = {
                    let mut conn = self.writer.acquire().await.map_err($crate::db_err)?;
                    applied_versions(&mut *conn).await?
                };
                let Some(target) = $crate::__private::undo_target(&applied, steps) else {
                    return Ok(());
                };
                $migrator
                    .undo(&self.writer, target)
                    .await
                    .map_err($crate::other_err)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::undo_target;

    #[test]
    fn undo_target_keeps_older_versions() {
        assert_eq!(undo_target(&[1, 2, 3], 0), None);
        assert_eq!(undo_target(&[], 2), None);
        assert_eq!(undo_target(&[1, 3, 2], 1), Some(2));
        assert_eq!(undo_target(&[1, 2, 3], 2), Some(1));
        assert_eq!(undo_target(&[1, 2, 3], 3), Some(0));
        assert_eq!(undo_target(&[1, 2, 3], 9), Some(0));
    }
}
