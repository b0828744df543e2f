//! `mcp-auth admin …`: the operator's commands, their arguments and their output (a table
//! for people, `--json` for scripts). The operations are [`mcp_auth_host::admin`]'s.

use std::time::{Duration, UNIX_EPOCH};

use clap::{Args, Subcommand};
use mcp_auth_host::admin::{Admin, Holder, Location};
use serde::Serialize;

use crate::AppLocation;

#[derive(Args)]
pub struct AdminArgs {
    #[command(flatten)]
    location: AppLocation,
    /// The component whose variables configure the operations (the one that signs tokens).
    #[arg(long, default_value = "token", global = true)]
    component: String,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Registered, provisioned and configured clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Revoke tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// The signing keys of access tokens.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Every client.
    List,
    /// One client.
    Show { client_id: String },
    /// Delete a client (as RFC 7592 DELETE does): its tokens stop working at once.
    Delete { client_id: String },
    /// Provision a confidential machine client for `client_credentials`; prints its secret
    /// once (only its hash is kept).
    Add {
        /// The client's name.
        #[arg(long)]
        name: Option<String>,
        /// The scopes it may get, space separated (default: the default scopes).
        #[arg(long)]
        scope: Option<String>,
        /// The one resource (RFC 8707) its tokens are for (default: any served resource).
        #[arg(long)]
        resource: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Revoke every grant of a user or of a client: immediately inactive at introspection.
    Revoke {
        /// The user: the tokens' `sub` or the user's name at the provider.
        #[arg(long, conflicts_with = "client", required_unless_present = "client")]
        user: Option<String>,
        /// The client, by `client_id`.
        #[arg(long)]
        client: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// The published keys, the signing one first.
    List,
    /// Sign with a new key; the old one stays published until its tokens expire.
    Rotate,
}

/// Runs one admin command; the error is the one-line message for stderr.
pub fn run(args: AdminArgs) -> Result<(), String> {
    let location = Location {
        manifest: args.location.manifest,
        runtime_config: args.location.runtime_config,
        data_dir: args.location.data_dir,
        env_file: args.location.env_file,
        component: args.component,
        environment: None,
    };
    let admin = Admin::open(&location)?;
    let json = args.json;
    match args.command {
        AdminCommand::Clients(command) => clients(&admin, command, json),
        AdminCommand::Tokens(TokensCommand::Revoke { user, client }) => {
            let holder = match (user, client) {
                (Some(user), _) => Holder::User(user),
                (None, Some(client)) => Holder::Client(client),
                (None, None) => return Err("say whose tokens: --user NAME or --client ID".into()),
            };
            let done = admin.revoke(&holder)?;
            admin.finish()?;
            print(json, &done, || {
                format!(
                    "revoked {} grant(s), {} live token(s)",
                    done.families, done.tokens
                )
            })
        }
        AdminCommand::Keys(KeysCommand::List) => {
            let keys = admin.keys_list()?;
            print(json, &keys, || {
                table(
                    &["KID", "ALG", "STATE", "PUBLISHED UNTIL", "SOURCE"],
                    keys.iter().map(|k| {
                        vec![
                            k.kid.clone(),
                            k.alg.clone(),
                            format!("{:?}", k.state).to_lowercase(),
                            k.published_until.map(date).unwrap_or_default(),
                            if k.configured {
                                "signing_keys"
                            } else {
                                "store"
                            }
                            .into(),
                        ]
                    }),
                )
            })
        }
        AdminCommand::Keys(KeysCommand::Rotate) => {
            let rotation = admin.rotate_key()?;
            admin.finish()?;
            print(json, &rotation, || {
                match (&rotation.replaced, rotation.published_until) {
                    (Some(old), Some(until)) => format!(
                        "signing with {} ({}); {old} stays published until {}",
                        rotation.kid,
                        rotation.alg,
                        date(until)
                    ),
                    _ => format!(
                        "signing with {} ({}), the first key",
                        rotation.kid, rotation.alg
                    ),
                }
            })
        }
    }
}

fn clients(admin: &Admin, command: ClientsCommand, json: bool) -> Result<(), String> {
    match command {
        ClientsCommand::List => {
            let clients = admin.clients()?;
            print(json, &clients, || {
                table(
                    &["CLIENT ID", "SOURCE", "NAME", "GRANT TYPES", "ISSUED"],
                    clients.iter().map(|c| {
                        vec![
                            c.client_id.clone(),
                            c.source.clone(),
                            c.client_name.clone().unwrap_or_default(),
                            c.grant_types.join(" "),
                            match c.client_id_issued_at {
                                0 => String::new(),
                                at => date(at),
                            },
                        ]
                    }),
                )
            })
        }
        ClientsCommand::Show { client_id } => {
            let client = admin.client(&client_id)?;
            print(json, &client, || {
                let rows = [
                    ("client_id", client.client_id.clone()),
                    ("source", client.source.clone()),
                    ("name", client.client_name.clone().unwrap_or_default()),
                    ("confidential", client.confidential.to_string()),
                    ("grant_types", client.grant_types.join(" ")),
                    ("scope", client.scope.clone().unwrap_or_default()),
                    ("redirect_uris", client.redirect_uris.join(" ")),
                    ("resource", client.resource.clone().unwrap_or_default()),
                    ("issued", date(client.client_id_issued_at)),
                ];
                table(
                    &["FIELD", "VALUE"],
                    rows.into_iter().map(|(k, v)| vec![k.to_string(), v]),
                )
            })
        }
        ClientsCommand::Delete { client_id } => {
            admin.delete_client(&client_id)?;
            admin.finish()?;
            let done = serde_json::json!({ "deleted": client_id });
            print(json, &done, || format!("deleted client {client_id}"))
        }
        ClientsCommand::Add {
            name,
            scope,
            resource,
        } => {
            let added = admin.add_client(name, scope.as_deref(), resource.as_deref())?;
            admin.finish()?;
            print(json, &added, || {
                format!(
                    "client_id     {}\nclient_secret {}\n(the secret is shown only now; only its hash is kept)",
                    added.client_id, added.client_secret
                )
            })
        }
    }
}

/// `value` as JSON, or the text `human` makes.
fn print<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce() -> String,
) -> Result<(), String> {
    if json {
        let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        println!("{}", human());
    }
    Ok(())
}

/// Rows under a header, each column as wide as its widest cell.
fn table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(rows)
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:width$}"))
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Seconds since the epoch as an HTTP date (`Sat, 05 Dec 2026 18:00:00 GMT`).
fn date(seconds: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(seconds))
}
