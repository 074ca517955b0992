//! The caller's identity inside the tenant's database, as PostgREST and Supabase put it there:
//! for an endpoint deployed with `db_claims`, every transaction of a request starts by setting
//! `request.jwt.claims` (the verified token's claims, JSON; `{}` for a public endpoint) and
//! `request.endpoint`, transaction-local, so that the tenant's row-level security policies can
//! read them with `current_setting('request.jwt.claims', true)`. Handlers cannot change them
//! (`statements::refuse_session_control`).

use rand::RngCore;

/// The settings one request's transactions carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbSession {
    /// The caller's claims, as JSON text.
    pub claims: String,
    /// The endpoint's name.
    pub endpoint: String,
}

impl DbSession {
    /// The statement that sets them, to follow a `BEGIN` in the same batch: `; SELECT
    /// set_config(...)`. The values are dollar-quoted with a random tag that neither contains,
    /// so no content and no session setting (`standard_conforming_strings`, which the tenant's
    /// own SQL may change on a pooled connection) can end the quote early.
    pub fn sql(&self) -> String {
        format!(
            "; SELECT set_config('request.jwt.claims', {}, true), \
             set_config('request.endpoint', {}, true)",
            dollar_quoted(&self.claims),
            dollar_quoted(&self.endpoint)
        )
    }
}

/// `text` as a dollar-quoted literal whose tag does not occur in it.
fn dollar_quoted(text: &str) -> String {
    loop {
        let mut tag = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut tag);
        let tag = format!("$pf{}$", hex::encode(tag));
        if !text.contains(&tag) {
            return format!("{tag}{text}{tag}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_whole() {
        let session = DbSession {
            claims: r#"{"sub":"x'); DROP TABLE t; --$$ \' $pf$"}"#.into(),
            endpoint: "notes".into(),
        };
        let sql = session.sql();
        let tag = &sql[sql.find("$pf").unwrap()..][..20];
        assert!(tag.ends_with('$'), "{sql}");
        assert_eq!(sql.matches(tag).count(), 2, "{sql}");
        assert!(
            sql.contains(&format!("{tag}{}{tag}", session.claims)),
            "{sql}"
        );
    }
}
