<?xml version="1.0" encoding="utf-8"?>
<!-- aggregator's RSS 2.0 and Atom feeds as a readable page in a browser (feed readers ignore
     it). Only value-of and attribute values: what a feed carries is written as text, never as
     markup; the links are the feed's own, which publish.py keeps to http(s). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom" exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="utf-8" doctype-system="about:legacy-compat"/>

  <xsl:variable name="title" select="/rss/channel/title | /atom:feed/atom:title"/>

  <xsl:template match="/">
    <html lang="en">
      <head>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="$title"/> (feed)</title>
        <link rel="stylesheet" href="style.css"/>
      </head>
      <body>
        <header class="site">
          <p class="name"><a href="./"><xsl:value-of select="$title"/></a></p>
          <p class="tagline">This is a news feed: copy this page's address into a feed reader
            to subscribe. The stories, their sources and why they are together are on
            <a href="./">the front page</a>.</p>
        </header>
        <main id="main">
          <h1>Latest stories</h1>
          <xsl:apply-templates select="rss/channel/item | atom:feed/atom:entry"/>
        </main>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="item">
    <article class="teaser">
      <h2><xsl:call-template name="headline">
        <xsl:with-param name="href" select="link"/>
      </xsl:call-template></h2>
      <p class="lead"><xsl:call-template name="unescape">
        <xsl:with-param name="text" select="description"/>
      </xsl:call-template></p>
      <p class="meta">First report <xsl:value-of select="pubDate"/>
        <xsl:call-template name="via"/></p>
    </article>
  </xsl:template>

  <xsl:template match="atom:entry">
    <article class="teaser">
      <h2><xsl:call-template name="headline">
        <xsl:with-param name="href" select="atom:link[@rel='alternate']/@href"/>
      </xsl:call-template></h2>
      <p class="lead"><xsl:value-of select="atom:summary"/></p>
      <p class="meta">First report <xsl:value-of
          select="translate(substring(atom:published, 1, 16), 'T', ' ')"/> UTC<xsl:call-template
          name="via"/></p>
    </article>
  </xsl:template>

  <xsl:template name="headline">
    <xsl:param name="href"/>
    <xsl:choose>
      <xsl:when test="$href"><a href="{$href}"><xsl:value-of select="title | atom:title"/></a></xsl:when>
      <xsl:otherwise><xsl:value-of select="title | atom:title"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- the configured sources the story's reports came through -->
  <xsl:template name="via">
    <xsl:for-each select="category | atom:category/@term">
      <xsl:choose>
        <xsl:when test="position() = 1"> · via </xsl:when>
        <xsl:otherwise>, </xsl:otherwise>
      </xsl:choose>
      <xsl:value-of select="."/>
    </xsl:for-each>
  </xsl:template>

  <!-- An RSS description is HTML: ours is escaped text (publish.py escapes &, < and >), so
       undoing those three gives the text back, to be written as text again. -->
  <xsl:template name="unescape">
    <xsl:param name="text"/>
    <xsl:choose>
      <xsl:when test="contains($text, '&amp;')">
        <xsl:value-of select="substring-before($text, '&amp;')"/>
        <xsl:variable name="rest" select="substring-after($text, '&amp;')"/>
        <xsl:choose>
          <xsl:when test="starts-with($rest, 'lt;')">
            <xsl:text>&lt;</xsl:text>
            <xsl:call-template name="unescape">
              <xsl:with-param name="text" select="substring($rest, 4)"/>
            </xsl:call-template>
          </xsl:when>
          <xsl:when test="starts-with($rest, 'gt;')">
            <xsl:text>&gt;</xsl:text>
            <xsl:call-template name="unescape">
              <xsl:with-param name="text" select="substring($rest, 4)"/>
            </xsl:call-template>
          </xsl:when>
          <xsl:when test="starts-with($rest, 'amp;')">
            <xsl:text>&amp;</xsl:text>
            <xsl:call-template name="unescape">
              <xsl:with-param name="text" select="substring($rest, 5)"/>
            </xsl:call-template>
          </xsl:when>
          <xsl:otherwise>
            <xsl:text>&amp;</xsl:text>
            <xsl:call-template name="unescape">
              <xsl:with-param name="text" select="$rest"/>
            </xsl:call-template>
          </xsl:otherwise>
        </xsl:choose>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$text"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
