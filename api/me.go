package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// meView is the body of GET /v1/me.
type meView struct {
	Role    Role   `json:"role"`
	Subject string `json:"subject"`
}

// me handles GET /v1/me (every role): the role and subject the service
// took from the caller's token, after the identity provider's role
// mapping. The console signs in with it and shows who is signed in.
func (s *Server) me(c *gin.Context) {
	p := principal(c)
	c.JSON(http.StatusOK, meView{Role: p.Role, Subject: p.Subject})
}
