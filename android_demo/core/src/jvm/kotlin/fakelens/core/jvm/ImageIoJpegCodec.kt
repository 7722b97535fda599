package fakelens.core.jvm

import fakelens.core.JpegCodec
import fakelens.core.JpegTables
import fakelens.core.RgbImage
import java.awt.image.BufferedImage
import java.awt.image.DataBufferByte
import java.io.ByteArrayInputStream
import java.io.ByteArrayOutputStream
import javax.imageio.IIOImage
import javax.imageio.ImageIO
import javax.imageio.ImageTypeSpecifier
import javax.imageio.ImageWriteParam
import javax.imageio.metadata.IIOMetadataNode
import javax.imageio.plugins.jpeg.JPEGQTable
import javax.imageio.stream.MemoryCacheImageInputStream
import javax.imageio.stream.MemoryCacheImageOutputStream

/**
 * [JpegCodec] on the JDK's javax.imageio JPEG plugin (a libjpeg 6b build inside the JDK),
 * configured like Pillow's `save(format="JPEG", quality=q)`:
 *
 *  - quantisation tables: libjpeg's jpeg_set_quality(q, force_baseline=TRUE) applied to the
 *    Annex K tables, computed in integers by [JpegTables] and written through the image
 *    metadata. (ImageWriteParam.setCompressionQuality is NOT used: the JDK maps quality with a
 *    float formula and scales the *half* chrominance table K2Div2Chrominance, so its chroma
 *    tables are twice as fine as libjpeg's at every quality.)
 *  - 4:2:0 chroma subsampling (luma 2x2, Cb/Cr 1x1), baseline sequential, standard Huffman
 *    tables, the plugin's default islow DCT.
 *
 * Not used on Android (no javax.imageio there); it lets the JVM tests measure how close a
 * second libjpeg-family codec gets to Pillow's.
 */
class ImageIoJpegCodec : JpegCodec {
    override fun encode(image: RgbImage, quality: Int): ByteArray {
        require(quality in 1..100) { "JPEG quality must be in 1..100, got $quality" }
        val bi = toBufferedImage(image)
        val writer = ImageIO.getImageWritersByFormatName("jpeg").next()
        try {
            val param = writer.defaultWriteParam
            param.compressionMode = ImageWriteParam.MODE_COPY_FROM_METADATA
            param.progressiveMode = ImageWriteParam.MODE_DISABLED
            val metadata = writer.getDefaultImageMetadata(ImageTypeSpecifier.createFromRenderedImage(bi), param)
            val format = "javax_imageio_jpeg_image_1.0"
            val root = metadata.getAsTree(format) as IIOMetadataNode
            setTables(root, quality)
            setSubsampling420(root)
            metadata.setFromTree(format, root)
            val bytes = ByteArrayOutputStream()
            MemoryCacheImageOutputStream(bytes).use { out ->
                writer.output = out
                writer.write(null, IIOImage(bi, null, metadata), param)
            }
            return bytes.toByteArray()
        } finally {
            writer.dispose()
        }
    }

    override fun decode(jpeg: ByteArray): RgbImage {
        val reader = ImageIO.getImageReadersByFormatName("jpeg").next()
        try {
            MemoryCacheImageInputStream(ByteArrayInputStream(jpeg)).use { input ->
                reader.input = input
                return fromBufferedImage(reader.read(0))
            }
        } finally {
            reader.dispose()
        }
    }

    private fun setTables(root: IIOMetadataNode, quality: Int) {
        val tables = root.getElementsByTagName("dqtable")
        check(tables.length >= 2) { "JPEG writer metadata has ${tables.length} quantisation tables, expected 2" }
        for (i in 0 until tables.length) {
            val node = tables.item(i) as IIOMetadataNode
            val id = node.getAttribute("qtableId").toInt()
            val natural = if (id == 0) JpegTables.luminance(quality) else JpegTables.chrominance(quality)
            node.setAttribute("elementPrecision", "0") // 8-bit entries: baseline
            node.userObject = JPEGQTable(natural)
        }
    }

    private fun setSubsampling420(root: IIOMetadataNode) {
        val comps = root.getElementsByTagName("componentSpec")
        check(comps.length == 3) { "expected 3 colour components, got ${comps.length}" }
        for (i in 0 until comps.length) {
            val c = comps.item(i) as IIOMetadataNode
            val f = if (i == 0) "2" else "1"
            c.setAttribute("HsamplingFactor", f)
            c.setAttribute("VsamplingFactor", f)
            c.setAttribute("QtableSelector", if (i == 0) "0" else "1")
        }
    }

    companion object {
        fun toBufferedImage(image: RgbImage): BufferedImage {
            val bi = BufferedImage(image.width, image.height, BufferedImage.TYPE_3BYTE_BGR)
            val dst = (bi.raster.dataBuffer as DataBufferByte).data
            val src = image.data
            for (p in 0 until image.width * image.height) {
                dst[3 * p] = src[3 * p + 2]
                dst[3 * p + 1] = src[3 * p + 1]
                dst[3 * p + 2] = src[3 * p]
            }
            return bi
        }

        fun fromBufferedImage(bi: BufferedImage): RgbImage {
            val out = ByteArray(bi.width * bi.height * 3)
            if (bi.type == BufferedImage.TYPE_3BYTE_BGR) {
                val src = (bi.raster.dataBuffer as DataBufferByte).data
                for (p in 0 until bi.width * bi.height) {
                    out[3 * p] = src[3 * p + 2]
                    out[3 * p + 1] = src[3 * p + 1]
                    out[3 * p + 2] = src[3 * p]
                }
            } else {
                val argb = bi.getRGB(0, 0, bi.width, bi.height, null, 0, bi.width)
                for (p in argb.indices) {
                    out[3 * p] = (argb[p] shr 16).toByte()
                    out[3 * p + 1] = (argb[p] shr 8).toByte()
                    out[3 * p + 2] = argb[p].toByte()
                }
            }
            return RgbImage(bi.width, bi.height, out)
        }
    }
}
