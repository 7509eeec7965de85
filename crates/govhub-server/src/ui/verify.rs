//! The public licence verify page (`/verify/{id}`, no sign-in) and its QR codes.
//!
//! QR codes come from the `qrcode` crate (pure Rust, no default features, only its SVG
//! renderer; small, long maintained, no unsafe); the PNG is the same module matrix
//! written with the `png` crate.

use super::session::PageCtx;
use super::{render_page, respond};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use govhub_core::licence::Verdict;
use govhub_core::{Code, Error};
use minijinja::context;
use qrcode::{Color, EcLevel, QrCode};

/// Pixels per QR module in the PNG, and the quiet zone in modules.
const PNG_SCALE: usize = 8;
const QUIET: usize = 4;

fn badge(v: &Verdict) -> &'static str {
    match v {
        Verdict::Valid => "badge-green",
        Verdict::Suspended | Verdict::Expired | Verdict::NotYetValid => "badge-amber",
        _ => "badge-red",
    }
}

/// `GET /verify/{id}`.
pub async fn page(State(st): State<AppState>, page: PageCtx, Path(id): Path<String>) -> Response {
    let result = async {
        let (status, extra) = match st.hub.verify_licence_public(&id).await {
            Ok(v) => {
                let zh = page.lang == super::i18n::Lang::Zh;
                (
                    StatusCode::OK,
                    context! {
                        found => true,
                        id => v.id,
                        verdict => v.verdict.code(),
                        verdict_class => badge(&v.verdict),
                        valid => v.verdict.is_valid(),
                        reason => if zh { v.verdict.reason_zh() } else { v.verdict.reason() },
                        type_name => v.type_name,
                        issuer_name => v.issuer_name,
                        holder => v.holder_masked,
                        valid_from => v.valid_from.map(|d| d.to_string()),
                        valid_until => v.valid_until.map(|d| d.to_string()),
                        issued_at => v.issued_at.map(|t| t.format("%Y-%m-%d").to_string()),
                        status_reason => v.status_reason,
                        seal_serial => v.seal_serial.clone(),
                        seal_href => match (&v.issuer, &v.seal_serial) {
                            (Some(o), Some(s)) => Some(format!("/api/v1/orgs/{}/certificate.pem?serial={s}", super::session::urlencode(o))),
                            _ => None,
                        },
                        seal_revoked_at => v.seal_revoked_at.map(|t| t.format("%Y-%m-%d").to_string()),
                        seal_revoke_reason => v.seal_revoke_reason,
                        qr_path => format!("/verify/{}/qr.svg", super::session::urlencode(&id)),
                        png_path => format!("/verify/{}/qr.png", super::session::urlencode(&id)),
                    },
                )
            }
            Err(e) if matches!(e.code, Code::LicenceIdCheck | Code::InvalidLicenceId | Code::UnknownLicence) => {
                let verdict = match e.code {
                    Code::LicenceIdCheck => "bad-check-character",
                    Code::InvalidLicenceId => "bad-identifier",
                    _ => "unknown",
                };
                let status = if e.code == Code::UnknownLicence { StatusCode::NOT_FOUND } else { StatusCode::OK };
                let zh = page.lang == super::i18n::Lang::Zh;
                (
                    status,
                    context! {
                        found => false, id => id.clone(), verdict => verdict, verdict_class => "badge-red", valid => false,
                        reason => if zh { e.message_zh.clone() } else { e.message.clone() },
                    },
                )
            }
            Err(e) => return Err(e),
        };
        render_page(&st, &page, None, "verify.html", "", status, extra)
    }
    .await;
    respond(&st, &page, None, result)
}

fn verify_url(st: &AppState, headers: &HeaderMap, id: &str) -> String {
    format!("{}/verify/{}", crate::api::licences::base_url(st, headers), id)
}

fn qr(url: &str) -> Result<QrCode, Error> {
    QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M).map_err(Error::internal)
}

async fn known(st: &AppState, id: &str) -> Result<String, Error> {
    st.hub.verify_licence_public(id).await.map(|v| v.id)
}

/// `GET /verify/{id}/qr.svg`: a QR code linking to the verify page.
pub async fn qr_svg(State(st): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let result = async {
        let id = known(&st, &id).await?;
        let code = qr(&verify_url(&st, &headers, &id))?;
        Ok::<_, Error>(code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).build())
    }
    .await;
    match result {
        Ok(svg) => {
            let mut r = svg.into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
            r
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}

/// The QR matrix as a greyscale PNG.
fn png_of(code: &QrCode) -> Result<Vec<u8>, Error> {
    let w = code.width();
    let side = (w + 2 * QUIET) * PNG_SCALE;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == Color::Dark {
            let (mx, my) = (i % w + QUIET, i / w + QUIET);
            for y in my * PNG_SCALE..(my + 1) * PNG_SCALE {
                if let Some(row) = pixels.get_mut(y * side + mx * PNG_SCALE..y * side + (mx + 1) * PNG_SCALE) {
                    row.fill(0);
                }
            }
        }
    }
    let mut out = Vec::new();
    let side32 = u32::try_from(side).map_err(Error::internal)?;
    let mut enc = png::Encoder::new(&mut out, side32, side32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(Error::internal)?;
    writer.write_image_data(&pixels).map_err(Error::internal)?;
    writer.finish().map_err(Error::internal)?;
    Ok(out)
}

/// `GET /verify/{id}/qr.png`.
pub async fn qr_png(State(st): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let result = async {
        let id = known(&st, &id).await?;
        png_of(&qr(&verify_url(&st, &headers, &id))?)
    }
    .await;
    match result {
        Ok(bytes) => {
            let mut r = bytes.into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
            r
        }
        Err(e) => crate::error::ApiError(e).into_response(),
    }
}
