package api

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"entitlements/billing"

	"github.com/gin-gonic/gin"
)

// consoleFiles is the billing console: static HTML, CSS and JavaScript
// modules, with no build step. It calls the JSON API with the bearer token
// the user signs in with.
//
//go:embed console
var consoleFiles embed.FS

// ConsoleCSP is the Content-Security-Policy of every console response:
// scripts, styles and requests from this origin only, no inline script
// or style, no framing, no forms posting anywhere, no plugins.
const ConsoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; " +
	"frame-ancestors 'none'"

// consoleRoutes serves the console at /console/ (and redirects /console
// there).
func (s *Server) consoleRoutes(r *gin.Engine) {
	files, err := fs.Sub(consoleFiles, "console")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	r.GET("/console", func(c *gin.Context) {
		c.Header("Cache-Control", "no-cache")
		c.Redirect(http.StatusMovedPermanently, "/console/")
	})
	r.GET("/console/*file", func(c *gin.Context) {
		name := strings.TrimPrefix(path.Clean("/"+c.Param("file")), "/")
		if name == "config.json" {
			// The configured zone, so that local dates typed in the console
			// become instants of that zone, and the audit actions the
			// audit page offers as its action filter.
			c.Header("Content-Security-Policy", ConsoleCSP)
			c.Header("Cache-Control", "no-cache")
			_, off := s.now().In(s.loc).Zone()
			c.JSON(http.StatusOK, gin.H{"zone": s.loc.String(), "offset_seconds": off, "audit_actions": billing.AuditActions})
			return
		}
		if name == "" {
			name = "index.html"
		}
		st, err := fs.Stat(files, name)
		if err != nil || st.IsDir() {
			s.fail(c, billing.Errorf(billing.ENotFound, "no such console file"))
			return
		}
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", ConsoleCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-cache")
		http.ServeFileFS(c.Writer, c.Request, files, name)
	})
}
