//! Responses the gateway writes itself (404, redirects, direct responses,
//! errors), with the route's response header filters applied where the
//! Gateway API asks for them.

use bytes::Bytes;
use pingora_error::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// A locally generated response.
#[derive(Debug, Default)]
pub struct LocalResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Bytes>,
}

impl LocalResponse {
    pub fn status(status: u16) -> Self {
        LocalResponse {
            status,
            ..Default::default()
        }
    }

    /// Builds the header; `modify` runs last so filters see the final headers.
    pub fn header(&self, modify: impl FnOnce(&mut ResponseHeader)) -> Result<ResponseHeader> {
        let mut header = ResponseHeader::build(self.status, Some(self.headers.len() + 2))?;
        for (name, value) in &self.headers {
            header.insert_header(name.clone(), value.clone())?;
        }
        let len = self.body.as_ref().map_or(0, Bytes::len);
        header.insert_header(http::header::CONTENT_LENGTH, len.to_string())?;
        if self.body.is_some() {
            header.insert_header(http::header::CONTENT_TYPE, "text/plain")?;
        }
        modify(&mut header);
        Ok(header)
    }

    pub async fn write(
        self,
        session: &mut Session,
        modify: impl FnOnce(&mut ResponseHeader),
    ) -> Result<()> {
        let header = self.header(modify)?;
        let body = self.body.filter(|b| !b.is_empty());
        session
            .write_response_header(Box::new(header), body.is_none())
            .await?;
        if let Some(body) = body {
            session.write_response_body(Some(body), true).await?;
        }
        Ok(())
    }
}
