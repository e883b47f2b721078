//! Password hashing with argon2id (the crate's default parameters: 19 MiB, 2 passes).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{AppError, AppResult};

/// A valid hash of a random password, verified against when an email is unknown so that the
/// response time does not reveal which emails exist.
pub(crate) static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    hash_password("an unguessable placeholder 7c1f").unwrap_or_default()
});

/// The password rule: 8 to 256 characters, not all of one kind (at least a letter and a
/// non-letter).
pub fn validate_password(field: &str, password: &str) -> AppResult<()> {
    let len = password.chars().count();
    let has_letter = password.chars().any(char::is_alphabetic);
    let has_other = password.chars().any(|c| !c.is_alphabetic());
    if !(8..=256).contains(&len) || !has_letter || !has_other {
        return Err(AppError::validation(
            field,
            "must be 8-256 characters and contain at least one letter and one digit or symbol",
        ));
    }
    Ok(())
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing password: {e}")))
}

/// Checks a password against a PHC hash; malformed hashes do not match.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_rules_hold() {
        let hash = hash_password("vectis-demo").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("vectis-demo", &hash));
        assert!(!verify_password("vectis-dem0", &hash));
        assert!(!verify_password("vectis-demo", "not a hash"));
        assert!(PasswordHash::new(&DUMMY_HASH).is_ok());
        assert!(validate_password("p", "short1").is_err());
        assert!(validate_password("p", "onlyletters").is_err());
        assert!(validate_password("p", "1234567890").is_err());
        assert!(validate_password("p", "vectis-demo").is_ok());
    }
}
