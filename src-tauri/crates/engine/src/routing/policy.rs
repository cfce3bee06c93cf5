//! The `[policy]` section: which targets may run at all, whatever the
//! route says. A provider disabled in config (`enabled = false`) is refused
//! here too, first, by the same path. It is checked per target before anything is sent, so a
//! policy can never be bypassed by a fallback, and a target it forbids is
//! skipped with a [`PolicyViolation`] that says which rule and why.
//!
//! ```toml
//! [policy]
//! allowed_providers = ["ollama", "openai"]   # only these provider ids
//! local_only = true                          # only loopback / LAN servers
//! max_usd_per_mtok = "5"                     # input and output price cap
//! ```

use crate::catalog::Rates;
use crate::config::{Config, ConfigError};
use crate::money::Price;
use crate::provider::ProviderConfig;

use super::config::{bool_field, price_field, strings_field};

/// Rules every target must satisfy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Only these provider ids may run (`None`: any).
    pub allowed_providers: Option<Vec<String>>,
    /// Only local servers (loopback or private network, or `local = true`).
    pub local_only: bool,
    /// The most a model may cost per million tokens, input and output alike.
    /// A model without a known price is refused while a cap is set.
    pub max_usd_per_mtok: Option<Price>,
}

/// Why a target may not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// The provider has `enabled = false` in config.toml.
    #[error("provider \"{provider}\" is disabled in config (enabled = false)")]
    Disabled {
        /// The provider id.
        provider: String,
    },
    /// The provider is not in `allowed_providers`.
    #[error("provider \"{provider}\" is not in policy.allowed_providers ({})", allowed.join(", "))]
    NotAllowed {
        /// The provider id.
        provider: String,
        /// The allowed ids.
        allowed: Vec<String>,
    },
    /// `local_only` is set and the provider is not local.
    #[error("policy.local_only: provider \"{provider}\" is not a local server ({base_url})")]
    NotLocal {
        /// The provider id.
        provider: String,
        /// Where it is.
        base_url: String,
    },
    /// A price is above `max_usd_per_mtok`.
    #[error("{which} price {price} is above policy.max_usd_per_mtok ({cap})")]
    AbovePriceCap {
        /// `input` or `output`.
        which: &'static str,
        /// The model's price.
        price: Price,
        /// The cap.
        cap: Price,
    },
    /// A price cap is set and the model's price is unknown.
    #[error("the price of {target} is unknown and policy.max_usd_per_mtok is {cap}")]
    UnknownPrice {
        /// `provider:model`.
        target: String,
        /// The cap.
        cap: Price,
    },
}

const POLICY_KEYS: &[&str] = &["allowed_providers", "local_only", "max_usd_per_mtok"];

impl Policy {
    /// Read `[policy]` from `config`; unknown keys and allowed providers
    /// that are not configured anywhere become warnings.
    pub(super) fn from_config(
        config: &Config,
        warnings: &mut Vec<String>,
    ) -> Result<Self, ConfigError> {
        let t = &config.policy;
        for key in t.keys() {
            if !POLICY_KEYS.contains(&key.as_str()) {
                warnings.push(
                    config
                        .error_at(
                            "policy",
                            Some(key),
                            format!(
                                "unknown key in [policy] is ignored (known: {})",
                                POLICY_KEYS.join(", ")
                            ),
                        )
                        .to_string(),
                );
            }
        }
        let allowed_providers = strings_field(config, "policy", t, "allowed_providers")?;
        for id in allowed_providers.iter().flatten() {
            if config.provider(id).is_none() {
                warnings.push(
                    config
                        .error_at(
                            "policy",
                            Some("allowed_providers"),
                            format!("{id:?} is neither a configured provider nor a preset"),
                        )
                        .to_string(),
                );
            }
        }
        Ok(Self {
            allowed_providers,
            local_only: bool_field(config, "policy", t, "local_only")?.unwrap_or(false),
            max_usd_per_mtok: price_field(config, "policy", t, "max_usd_per_mtok")?,
        })
    }

    /// True when no rule is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// May `model` at `provider` run, when a request would pay `rates`
    /// (if known; a long prompt pays its tier's, which the cap applies to)?
    pub fn check(
        &self,
        provider: &ProviderConfig,
        model: &str,
        rates: Option<&Rates>,
    ) -> Result<(), PolicyViolation> {
        if !provider.enabled {
            return Err(PolicyViolation::Disabled {
                provider: provider.id.clone(),
            });
        }
        if let Some(allowed) = &self.allowed_providers
            && !allowed.contains(&provider.id)
        {
            return Err(PolicyViolation::NotAllowed {
                provider: provider.id.clone(),
                allowed: allowed.clone(),
            });
        }
        if self.local_only && !provider.local {
            return Err(PolicyViolation::NotLocal {
                provider: provider.id.clone(),
                base_url: provider.base_url.clone(),
            });
        }
        if let Some(cap) = self.max_usd_per_mtok {
            let Some(price) = rates else {
                return Err(PolicyViolation::UnknownPrice {
                    target: format!("{}:{model}", provider.id),
                    cap,
                });
            };
            for (which, p) in [("input", price.input), ("output", price.output)] {
                if p > cap {
                    return Err(PolicyViolation::AbovePriceCap {
                        which,
                        price: p,
                        cap,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ProviderKind;
    use std::path::Path;

    fn price(i: &str, o: &str) -> Rates {
        Rates {
            input: Price::from_usd_per_mtok(i).unwrap(),
            output: Price::from_usd_per_mtok(o).unwrap(),
            ..Rates::default()
        }
    }

    #[test]
    fn each_rule_refuses_with_its_reason() {
        let local = ProviderConfig::custom("lab", ProviderKind::OpenAi, "http://127.0.0.1:8000/v1");
        let hosted = ProviderConfig::from_preset("openai").unwrap();
        let p = Policy {
            allowed_providers: Some(vec!["lab".into()]),
            ..Policy::default()
        };
        assert!(p.check(&local, "m", None).is_ok());
        let e = p.check(&hosted, "m", None).unwrap_err();
        assert!(matches!(e, PolicyViolation::NotAllowed { .. }));
        assert_eq!(
            e.to_string(),
            "provider \"openai\" is not in policy.allowed_providers (lab)"
        );

        let p = Policy {
            local_only: true,
            ..Policy::default()
        };
        assert!(p.check(&local, "m", None).is_ok());
        assert!(matches!(
            p.check(&hosted, "m", None),
            Err(PolicyViolation::NotLocal { .. })
        ));

        let p = Policy {
            max_usd_per_mtok: Some(Price::from_usd_per_mtok("5").unwrap()),
            ..Policy::default()
        };
        assert!(p.check(&hosted, "m", Some(&price("5", "5"))).is_ok());
        let e = p.check(&hosted, "m", Some(&price("1", "15"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "output price $15/Mtok is above policy.max_usd_per_mtok ($5/Mtok)"
        );
        let e = p.check(&hosted, "m", None).unwrap_err();
        assert!(matches!(e, PolicyViolation::UnknownPrice { .. }), "{e}");
        assert!(Policy::default().is_empty());
        // Disabled beats everything, even with no rule set.
        let mut off = local.clone();
        off.enabled = false;
        let e = Policy::default().check(&off, "m", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "provider \"lab\" is disabled in config (enabled = false)"
        );
    }

    #[test]
    fn the_policy_section_is_read_and_checked() {
        let load = |text: &str| {
            let cfg = Config::parse(Path::new("/h/config.toml"), text).unwrap();
            let mut w = Vec::new();
            Policy::from_config(&cfg, &mut w).map(|p| (p, w))
        };
        let (p, w) = load(
            "[policy]\nallowed_providers = [\"openai\", \"nope\"]\nlocal_only = false\nmax_usd_per_mtok = 2.5\nstrict = 1\n",
        )
        .unwrap();
        assert_eq!(
            p.allowed_providers,
            Some(vec!["openai".into(), "nope".into()])
        );
        assert_eq!(
            p.max_usd_per_mtok,
            Some(Price::from_usd_per_mtok("2.5").unwrap())
        );
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("policy.strict"), "{w:?}");
        assert!(w[1].contains("\"nope\""), "{w:?}");

        let e = load("[policy]\nlocal_only = \"yes\"\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(2), Some("policy.local_only"))
        );
        let e = load("[policy]\n\nmax_usd_per_mtok = \"cheap\"\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(3), Some("policy.max_usd_per_mtok"))
        );
    }
}
